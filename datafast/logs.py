"""Logging for datafast: progress and diagnostics go to stderr (and optionally a file), never data."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "datafast"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logger(level: int | str = "INFO", log_file: str | Path | None = None) -> logging.Logger:
    """Send datafast's logs to stderr and, if given, to `log_file`; returns the "datafast" logger.

    Calling it again replaces the handlers it installed before, so it is safe in notebooks.

    Example:
        >>> import datafast
        >>> log = datafast.configure_logger("WARNING")
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in list(logger.handlers):
        if getattr(handler, "_datafast", False):
            logger.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT if log_file is not None else "%(message)s"))
        handler._datafast = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)
