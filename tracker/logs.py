"""Logging: one-line messages on stderr for commands; for the long-running scheduler, timestamps with
their zone on stderr and in a rotating `db/tracker.log` readable by its owner only.

Nothing here formats a secret: the E-utilities client leaves `api_key` out of its request lines and
the mail module scrubs the SMTP password from its errors.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from datetime import datetime, tzinfo
from pathlib import Path

from tracker.errors import ConfigError

LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_COUNT = 5


class ZonedFormatter(logging.Formatter):
    """Stamps each line with the local time in `zone`, zone name included (the scheduler's times are in it)."""

    def __init__(self, fmt: str, zone: tzinfo):
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.zone).strftime(datefmt or "%Y-%m-%d %H:%M:%S %Z")


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files, rotated ones included, are created mode 0600."""

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=lambda path, flags: os.open(path, flags, 0o600))


def log_commands(verbose: bool = False) -> None:
    """A command's logging: bare messages on stderr, warnings only unless `verbose` (which adds the request lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    _install([handler], level=logging.DEBUG if verbose else logging.WARNING, scheduler_level=logging.WARNING)


def log_service(verbose: bool = False, *, zone: tzinfo, log_file: Path | None = None) -> None:
    """The scheduler's logging: "2025-01-06 07:00:03 CET INFO message" lines on stderr and in `log_file`.

    INFO and up (DEBUG with `verbose`, which adds the request lines and the logger names).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(open_log_file(log_file))
    pattern = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(asctime)s %(levelname)s %(message)s"
    for handler in handlers:
        handler.setFormatter(ZonedFormatter(pattern, zone))
    # APScheduler warns of missed and skipped runs; its INFO lines ("executed successfully" even for
    # a topic that failed) only repeat what tracker.schedule says better.
    _install(handlers, level=logging.DEBUG if verbose else logging.INFO,
             scheduler_level=logging.INFO if verbose else logging.WARNING)


def _install(handlers: list[logging.Handler], *, level: int, scheduler_level: int) -> None:
    """Replace the handlers tracker installed earlier (a command, then the scheduler it starts) with `handlers`."""
    root = logging.getLogger("tracker")
    scheduler = logging.getLogger("apscheduler")
    for logger in (root, scheduler):
        for handler in [h for h in logger.handlers if getattr(h, "_tracker", False)]:
            logger.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    scheduler.setLevel(scheduler_level)
    for logger in (root, scheduler):
        for handler in handlers:
            handler._tracker = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)


def open_log_file(path: Path) -> logging.Handler:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = PrivateRotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT,
                                             encoding="utf-8")
        os.chmod(path, 0o600)
    except OSError as error:
        raise ConfigError(f"cannot write the log file {path} ({error.strerror}): make {path.parent} writable "
                          "or choose another home with --home") from None
    return handler


__all__ = ["log_commands", "log_service", "open_log_file", "ZonedFormatter", "LOG_FILE_BYTES", "LOG_FILE_COUNT"]
