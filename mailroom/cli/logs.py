"""Where log lines go and how they look: text or JSON lines, on stderr or in a file.

Every line passes through one redaction filter
(:class:`mailroom.privacy.redaction.RedactionFilter`), put on the one handler
installed here, whatever the format and wherever it writes: a JSON line is
built from the record after the filter rewrote it, so its ``message`` and
``exception`` are the redacted text.

- ``text``: ``2026-12-03 14:00:00,123 INFO mailroom.smtp: …`` (for people, and
  for journald, which adds its own time stamp);
- ``json``: one object a line, ``{"time": "2026-12-03T14:00:00.123+00:00",
  "level": "INFO", "logger": "mailroom.smtp", "message": "…"}`` and
  ``"exception"`` when there is one (for a log collector).

A log file is opened for appending with a :class:`logging.handlers.WatchedFileHandler`,
which opens it again when logrotate moved it away, so no signal is needed. It
is created under the command line's umask 077: readable by its owner only. A
log file that cannot be opened stops nothing: the lines go to stderr, the
first of them saying why (``ingest -`` under an MTA must still store the mail,
and the daemon still serve).

Chosen, in this order: the command-line option (``--log-format``,
``--log-file``), the ``[logging]`` setting, text on stderr. A process whose
root logger has handlers already (a host program, pytest) keeps them as they
are: they are its own, and so is what they write.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mailroom.privacy.redaction import RedactionFilter

__all__ = ["LOG_FORMAT", "JsonFormatter", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("apscheduler", "mail-parser", "mailparser", "mail_parser", "aiosmtpd", "mail.log",
         "alembic")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def setup_logging(debug: bool, own_addresses: Iterable[str] = (), *, log_format: str = "text",
                  log_file: Path | None = None) -> None:
    """Log through the redaction filter, as ``log_format`` to ``log_file`` (or stderr)."""
    level = logging.DEBUG if debug else getattr(
        logging, os.environ.get("MAILROOM_LOG_LEVEL", "INFO").upper(), logging.INFO
    )
    root = logging.getLogger()
    if not root.handlers:
        handler, problem = _handler(log_file)
        handler.setFormatter(JsonFormatter() if log_format == "json"
                             else logging.Formatter(LOG_FORMAT))
        handler.addFilter(RedactionFilter(own_addresses))
        root.addHandler(handler)
        root.setLevel(level)
        if problem:
            logging.getLogger("mailroom.logs").warning(
                "cannot open the log file %s (%s): logging to stderr", log_file, problem)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _handler(log_file: Path | None) -> tuple[logging.Handler, str | None]:
    """The file's handler, or stderr's and why the file could not be opened."""
    if log_file is None:
        return logging.StreamHandler(sys.stderr), None
    try:
        return logging.handlers.WatchedFileHandler(log_file, encoding="utf-8"), None
    except OSError as exc:
        return logging.StreamHandler(sys.stderr), exc.strerror or str(exc)
