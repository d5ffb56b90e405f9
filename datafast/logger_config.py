"""The original datafast's `configure_logger`, on datafast's standard-library logging (`datafast.logs`).

Example:
    >>> from datafast.logger_config import configure_logger
    >>> configure_logger(level="INFO", log_file=None)
    <Logger datafast (INFO)>
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from . import logs

# the loguru fields the original's format strings use -> logging's record attributes
_LOGURU_FIELDS = {"time": "asctime", "level": "levelname", "message": "message", "name": "name",
                  "module": "module", "function": "funcName", "line": "lineno", "file": "filename",
                  "process": "process", "thread": "thread", "elapsed": "relativeCreated"}


class _JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger name, message."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "name": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _formatter(format_string: str) -> logging.Formatter:
    """A logging format (`%(levelname)s ...`) as is; a loguru one (`{time} | {level} | {message}`, colour tags
    such as `<green>` dropped, `{level: <8}`-style specs dropped) mapped onto the same record fields."""
    if "%(" in format_string:
        return logging.Formatter(format_string)
    text = re.sub(r"</?[a-z_ ]+>", "", format_string)

    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _LOGURU_FIELDS:
            raise ValueError(f"format_string: unknown field {{{name}}}; fields: {', '.join(_LOGURU_FIELDS)}")
        return "{" + _LOGURU_FIELDS[name] + "}"

    return logging.Formatter(re.sub(r"\{(\w+)(?::[^}]*)?\}", field, text), style="{")


def configure_logger(level: str | int = "INFO", log_file: str | Path | None = None,
                     format_string: str | None = None, colorize: bool = True,
                     serialize: bool = False) -> logging.Logger:
    """Send datafast's logs to stderr and, if given, to `log_file` (the original datafast's signature).

    Args:
        level: DEBUG, INFO, WARNING, ERROR (loguru's SUCCESS is read as INFO).
        log_file: also append the logs to this file.
        format_string: a logging format (`%(asctime)s %(message)s`) or a loguru-style one
            (`{time} | {level} | {message}`); default: datafast's.
        colorize: accepted for compatibility; datafast's log lines are plain text.
        serialize: one JSON object a line (time, level, name, message) instead of text.

    Returns:
        The "datafast" logger. Calling it again replaces the handlers it installed.
    """
    if isinstance(level, str) and level.upper() == "SUCCESS":
        level = "INFO"
    logger = logs.configure_logger(level, log_file)
    if format_string is None and not serialize:
        return logger
    formatter = _JSONFormatter() if serialize else _formatter(format_string or "")
    for handler in logger.handlers:
        if getattr(handler, "_datafast", False):
            handler.setFormatter(formatter)
    return logger


__all__ = ["configure_logger"]
