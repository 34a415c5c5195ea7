"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is found through ``MAILROOM_TEST_POSTGRES_URL`` (``.ci/run`` sets
it), else the local server at 127.0.0.1:5432 is tried. Each test run creates
its own database (``mailroom_t_<random>``) and drops it at the end, so two
runs never collide. Without a server the PostgreSQL cases are skipped, except
under CI (``CI=true``), where that is an error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailroom.cli.main import main
from mailroom.store.db import make_engine
from mailroom.store.migrate import upgrade
from mailroom.store.models import Base
from tests.pg_server import drop_pg_database, new_pg_database, pg_admin_url, pg_problem

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
IN_CI = os.environ.get("CI", "").lower() == "true"


def create_pg_database() -> str:
    """Create a fresh, uniquely named PostgreSQL database and return its URL
    (skip the test without a server; fail under CI)."""
    problem = pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {pg_admin_url()}: {problem}")
    return new_pg_database("mailroom_t_")


REAL_HOME = os.environ.get("HOME", "")  # before private_home replaces it (pip's cache is there)


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home of the test run's own: settings without a data directory fall back to
    ``~/.local/share/mailroom``, which must never be the real one."""
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("HOME", "XDG_DATA_HOME", "MAILROOM_HOME")}
    os.environ["HOME"] = str(home)
    os.environ.pop("XDG_DATA_HOME", None)
    os.environ.pop("MAILROOM_HOME", None)
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database shared by the run (tables emptied per test)."""
    url = create_pg_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def _empty_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: once per backend."""
    if request.param == "sqlite":
        target = tmp_path / "mailroom.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def dovecot_binary() -> str:
    """The ``dovecot`` binary; the test is skipped without it, except in CI (an error)."""
    from tests.dovecot import find_binary

    binary = find_binary()
    if binary is None:
        reason = "dovecot binary not found; install it with: apt-get install -y dovecot-imapd"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the IMAP tests must not be skipped)")
        pytest.skip(reason)
    return binary


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    return CORPORA


def _app_factory(url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from mailroom.runtime.wiring import build_app
    from tests.factories import FixedClock, build_settings

    apps = []

    def factory(clock=None, **sections):  # type: ignore[no-untyped-def]
        settings = build_settings(tmp_path, url, **sections)
        app = build_app(settings, clock=clock or FixedClock())
        apps.append(app)
        return app

    return factory, apps


@pytest.fixture
def make_app(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build Apps on the test database (both backends); closes them at the end."""
    factory, apps = _app_factory(db_url, tmp_path)
    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def make_pg_app(pg_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build Apps on PostgreSQL only: for tests of several processes or a server outage."""
    _empty_postgres(pg_url)
    factory, apps = _app_factory(pg_url, tmp_path)
    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app()


@pytest.fixture
def cli(app, tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``mailroom --config <test config> ARGS…``: (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["--config", str(tmp_path / "mailroom.toml"), *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run
