"""Where a measurement runs: a scratch directory, a migrated database, an App.

SQLite databases are files in the scratch directory. PostgreSQL databases
are created on the server named by ``MAILROOM_TEST_POSTGRES_URL`` (default:
the local server at 127.0.0.1:5432, database ``test``), uniquely named
``mailroom_bench_<random>``, and dropped afterwards, as the test suite does.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailroom.app import App
from mailroom.settings import Settings
from mailroom.store.db import make_engine
from mailroom.store.migrate import upgrade
from tests.factories import build_settings

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def pg_admin_url() -> str:
    return os.environ.get("MAILROOM_TEST_POSTGRES_URL") or DEFAULT_PG


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        engine = create_engine(pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]
    return None


def create_pg_database() -> str:
    name = f"mailroom_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    engine = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, migrated database (dropped or left in ``directory`` after)."""
    url = f"sqlite:///{directory / 'mailroom.db'}" if backend == "sqlite" else create_pg_database()
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if backend == "postgresql":
            drop_pg_database(url)


@dataclass
class Site:
    """A configured mailroom: its directory, database URL, settings and config file."""

    directory: Path
    url: str
    settings: Settings

    @property
    def config(self) -> Path:
        return self.directory / "mailroom.toml"

    def app(self) -> App:
        return App.build(self.settings)


@contextlib.contextmanager
def site(backend: str, directory: Path) -> Iterator[Site]:
    """A mailroom with its own var/ directory and a fresh migrated database."""
    directory.mkdir(parents=True, exist_ok=True)
    with database(backend, directory) as url:
        yield Site(directory, url, build_settings(directory, url))
