"""Locks held for as long as a process lives: one IMAP poller per account.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``) on a
connection kept open by the holder; on SQLite (one machine) an ``flock`` on a
file under ``var/locks/``. Both are released by the operating system or the
server when the holding process dies, so another process takes over.

``acquire()`` never waits: it says whether this process holds the lock now.
A database that cannot be reached (PostgreSQL) raises
:class:`~mailroom.errors.StoreUnavailable`, like every other store call, so
the caller can tell "someone else holds it" from "try again later". Who takes
which lock, and what it does without it, is wired in
:mod:`mailroom.runtime.doors`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from mailroom.private import make_private_dir
from mailroom.store.db import unavailable_as_store_error

log = logging.getLogger("mailroom.store.locks")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (advisory locks take a bigint)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ProcessLock:
    """``acquire()`` without waiting; ``held()`` tells whether it is still ours."""

    def __init__(self, engine: Engine, name: str, lock_dir: Path) -> None:
        self.engine = engine
        self.name = name
        self.lock_dir = lock_dir
        self._conn: Any = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            return self._acquire_advisory()
        return self._acquire_file()

    def _acquire_advisory(self) -> bool:
        with unavailable_as_store_error():
            conn = self.engine.connect()
        try:
            with unavailable_as_store_error():
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                   {"k": lock_key(self.name)}).scalar()
                conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def _acquire_file(self) -> bool:
        make_private_dir(self.lock_dir)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.name)
        fd = os.open(self.lock_dir / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        """False once the connection carrying an advisory lock is gone."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
            log.warning("lost the lock %s (its database connection ended)", self.name)
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": lock_key(self.name)})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - the server drops it with the connection
                pass
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
