"""Where a measurement runs: a scratch directory, a migrated database, an App.

SQLite databases are files in the scratch directory. PostgreSQL databases
are created on the server named by ``MAILROOM_TEST_POSTGRES_URL`` (default:
the local server at 127.0.0.1:5432, database ``test``), uniquely named
``mailroom_bench_<random>``, and dropped afterwards, as the test suite does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailroom.app import App
from mailroom.runtime.wiring import build_app
from mailroom.settings import Settings
from mailroom.store.db import make_engine
from mailroom.store.migrate import upgrade
from tests.factories import build_settings
from tests.pg_server import drop_pg_database, new_pg_database

BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, migrated database (dropped or left in ``directory`` after)."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'mailroom.db'}"
    else:
        url = new_pg_database("mailroom_bench_")
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
        return build_app(self.settings)


@contextlib.contextmanager
def site(backend: str, directory: Path, *, limits: dict[str, int] | None = None
         ) -> Iterator[Site]:
    """A mailroom with its own var/ directory and a fresh migrated database
    (``limits``: its ``[limits]`` settings, when not the defaults)."""
    directory.mkdir(parents=True, exist_ok=True)
    with database(backend, directory) as url:
        yield Site(directory, url, build_settings(directory, url, limits=limits or {}))
