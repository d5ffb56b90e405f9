"""Golden files: spec -> every compiled file, byte for byte. Refresh: pytest tests/test_golden.py --update-golden"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import datafast
from datafast.outdir import LOCK_FILE

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


def _files(root: Path) -> dict[str, bytes]:
    # .datafast.lock is the dir's (empty) process lock, not a compiled file
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}


@pytest.mark.parametrize("case", CASES)
def test_compiled_files_match_golden(case, tmp_path, update_golden):
    out = tmp_path / case
    datafast.compile(GOLDEN / f"{case}.yaml", out)
    expected_dir = GOLDEN / "expected" / case
    if update_golden:
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(out, expected_dir, ignore=shutil.ignore_patterns(LOCK_FILE))
    got, expected = _files(out), _files(expected_dir)
    assert sorted(got) == sorted(expected), "a file appeared or disappeared; refresh with --update-golden if intended"
    for name in expected:
        if got[name] != expected[name]:
            got_lines, exp_lines = got[name].splitlines(), expected[name].splitlines()
            first = next((i for i, (a, b) in enumerate(zip(got_lines, exp_lines, strict=False)) if a != b), min(len(got_lines), len(exp_lines)))
            pytest.fail(f"{case}/{name} differs from golden at line {first + 1} "
                        f"(refresh with --update-golden if intended)")


def test_every_dataset_type_has_a_golden_case():
    from datafast.compiler.spec import CONFIG_BY_TYPE

    assert set(CASES) == set(CONFIG_BY_TYPE)
