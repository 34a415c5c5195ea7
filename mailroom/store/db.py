"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout so the SMTP
door and the worker can share the file. PostgreSQL is reached through psycopg 3
(``postgresql+psycopg://``); a plain ``postgresql://`` URL is mapped to it.

The SQLite file is case material: mailroom creates it (and its folder, when
missing) 0600/0700 before SQLite opens it, and tightens an existing file that
is wider (:mod:`mailroom.private`). SQLite gives the ``-wal`` and ``-shm``
files it creates the database file's mode, whatever the umask. It runs with
``secure_delete`` on: a page or cell that is freed (a purge, an erasure, an
UPDATE that moved a row) is overwritten with zeros, not left in the file's
free space. The old versions of changed pages also sit in the ``-wal`` file
until a checkpoint copies them back; :func:`checkpoint` (which an erasure calls)
empties it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailroom.errors import StoreUnavailable
from mailroom.private import create_private_file, log_tightened, make_private_dir, tighten

SQLITE_BUSY_TIMEOUT_MS = 15_000
# SQLAlchemy's words for a transaction whose connection was lost (PendingRollbackError).
_INVALIDATED = "Can't reconnect until invalid transaction is rolled back"


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` to the psycopg 3 driver; leave others alone."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; creates the SQLite file (0600) and its folder when needed."""
    url = normalise_url(url)
    parsed = make_url(url)
    # An error's text leaves out the statement's values (a message's text, an address):
    # it is logged, and kept in inbox.error when a message is shunted.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def database_files(url: str) -> list[Path]:
    """The files of a SQLite database (the file, ``-wal``, ``-shm``, ``-journal``);
    none for PostgreSQL or an in-memory database."""
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return []
    return [Path(database + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def _prepare_sqlite_file(url: str) -> None:
    """Create the database file 0600 (in a 0700 folder when that is missing too) before
    SQLite does it with the umask's mode; tighten its files when they are wider."""
    files = database_files(url)
    if not files:
        return
    make_private_dir(files[0].parent)
    # An empty file is an empty database. Any other failure (a read-only folder) is left
    # for SQLite to report as it opens the file.
    with contextlib.suppress(OSError):
        os.close(create_private_file(files[0]))
    log_tightened(change for path in files if (change := tighten(path)) is not None)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    _prepare_sqlite_file(url)
    # cached_statements=0: a cached INSERT keeps its last bound values, i.e. a
    # copy of the last raw message (36 MB after a 25 MB attachment), for good.
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                    "cached_statements": 0}
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" event issues BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front, so two writers queue on the busy
    # timeout instead of failing with "database is locked" on upgrade.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


@contextlib.contextmanager
def one_writer(engine: Engine) -> Iterator[None]:
    """On SQLite, let this process's threads take the write lock one at a time.

    SQLite makes a writer that finds the file locked sleep and retry (1 ms,
    then longer, up to 100 ms a time), so twenty SMTP sessions storing at
    once would wait in those sleeps. Queueing on a lock here first wakes the
    next writer as soon as the previous one commits. PostgreSQL needs nothing.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    with _WRITERS_GUARD:
        lock = _WRITERS.setdefault(str(engine.url.database), threading.Lock())
    with lock:
        yield


def checkpoint(engine: Engine) -> bool | None:
    """Copy SQLite's write-ahead log into the database file and empty it
    (``wal_checkpoint(TRUNCATE)``), so old versions of changed pages are gone from
    disk. Waits up to the busy timeout for other readers; False when one still
    held the log, None on PostgreSQL (nothing to do)."""
    if engine.dialect.name != "sqlite":
        return None
    connection = engine.raw_connection()  # autocommit at the driver: no BEGIN around it
    try:
        cursor = connection.cursor()
        busy, _log_frames, _copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        connection.close()
    return not busy


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (row locks, SKIP LOCKED, advisory locks)."""
    return session.get_bind().dialect.name == "postgresql"


@contextlib.contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Turn connection-level database failures into StoreUnavailable."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        if getattr(error, "connection_invalidated", False) or _is_connection_error(error):
            raise StoreUnavailable(_short(error)) from error
        raise
    except exc.DisconnectionError as error:
        raise StoreUnavailable(_short(error)) from error
    except exc.PendingRollbackError as error:
        # The connection died earlier in this transaction (and the error was caught,
        # e.g. by a savepoint handler); finishing the transaction then fails like this.
        if _INVALIDATED in str(error):
            raise StoreUnavailable(_short(error)) from error
        raise


def stale_connection(error: StoreUnavailable) -> bool:
    """Whether ``error`` came from a pooled connection found dead on use.

    SQLAlchemy then drops that connection and every other one pooled before
    it (a restarted server ended them all), so the same work can be tried once
    more on a fresh connection. A connection that cannot be opened at all is
    not stale: trying again at once would only fail again.
    """
    cause = error.__cause__
    return isinstance(cause, exc.DBAPIError) and cause.connection_invalidated


def _is_connection_error(error: exc.DBAPIError) -> bool:
    text = str(error.orig).lower()
    words = ("connect", "terminat", "server closed", "database is locked", "unable to open",
             "shutdown", "no such host", "could not receive", "the connection is closed")
    return any(word in text for word in words)


def _short(error: Exception) -> str:
    text = str(getattr(error, "orig", error)).strip().splitlines()
    return text[0] if text else type(error).__name__
