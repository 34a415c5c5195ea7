"""The hostile message: 20,000 tiny attachments in 2 MB.

Parsed in full it takes seconds; processed inside one write transaction, as it
once was, it held SQLite's only write lock for minutes, and every other
delivery got ``451``. :func:`longest_write` times every transaction the
pipeline opens while it processes the message (from BEGIN to COMMIT or
ROLLBACK, by the engine's events) and returns the longest: the time the doors
could be kept waiting (on SQLite every transaction holds the write lock).
:func:`parse_seconds` is the full parse of the same message, beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from mailroom.app import App
from mailroom.intake.message import parse_message
from mailroom.pipeline import process_item
from mailroom.store.inbox import store_raw

ATTACHMENTS = 20_000


def hostile_message(count: int = ATTACHMENTS) -> bytes:
    """A text part and ``count`` one-byte attachments, each with its own name."""
    head = (b"From: attacker@evil.example\r\nTo: helpline@localhost\r\nSubject: files\r\n"
            b"Message-ID: <hostile@evil.example>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n')
    parts = [b"--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n"]
    parts += [b'--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: '
              b'attachment; filename="f%d.bin"\r\n\r\nx\r\n' % i for i in range(count)]
    return head + b"".join(parts) + b"--b--\r\n"


def parse_seconds(raw: bytes) -> float:
    started = time.perf_counter()
    parse_message(raw)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Processed:
    outcome: str
    seconds: float  # process_item, all of it
    longest_write: float  # the longest transaction it opened
    transactions: int
    error: str  # the inbox row's reason, first line


def longest_write(app: App, raw: bytes) -> Processed:
    """Store ``raw`` as a door would, then time ``process_item`` and its transactions."""
    item = store_raw(app.sessions, raw, door="smtp").inbox_id
    with transaction_times(app.engine) as times:
        started = time.perf_counter()
        outcome = process_item(app, item)
        seconds = time.perf_counter() - started
    with app.sessions() as session:
        from mailroom.store.models import InboxItem

        row = session.get(InboxItem, item)
        error = (row.error or "").splitlines()[0] if row is not None and row.error else ""
    return Processed(outcome, seconds, max(times, default=0.0), len(times), error)


@contextmanager
def transaction_times(engine: Engine) -> Iterator[list[float]]:
    """The length of every transaction on ``engine`` while the block runs."""
    began: dict[int, float] = {}
    times: list[float] = []

    def begin(conn: Any) -> None:
        # An AUTOCOMMIT connection (the pipeline's advisory lock on PostgreSQL) opens
        # no transaction on the server: each of its statements commits by itself.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            began[id(conn)] = time.perf_counter()

    def end(conn: Any) -> None:
        start = began.pop(id(conn), None)
        if start is not None:
            times.append(time.perf_counter() - start)

    event.listen(engine, "begin", begin)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
    try:
        yield times
    finally:
        event.remove(engine, "begin", begin)
        event.remove(engine, "commit", end)
        event.remove(engine, "rollback", end)
