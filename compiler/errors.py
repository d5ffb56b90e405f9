"""Typed errors raised by the compiler; each carries what a user needs to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec: where it is and what is wrong."""

    file: str | None
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class SpecError(ValueError):
    """A spec that cannot be compiled. Holds one or more located issues.

    Example:
        >>> str(SpecError.single("spec.yaml", 4, "classes.0.name", "field required"))
        'spec.yaml:4: classes.0.name: field required'
    """

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))

    @classmethod
    def single(cls, file: str | None, line: int | None, field: str, message: str) -> SpecError:
        return cls([SpecIssue(file, line, field, message)])
