"""The PostgreSQL server the tests and the bench create their databases on.

Found through ``MAILROOM_TEST_POSTGRES_URL`` (``.ci/run`` sets it), else the
local server at 127.0.0.1:5432, database ``test``. Plain functions, no pytest:
``tests/conftest.py`` adds skipping (or failing, under CI) on top, and
``bench/`` uses them as they are.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    return os.environ.get("MAILROOM_TEST_POSTGRES_URL") or DEFAULT_PG


def pg_admin(sql: str) -> None:
    """Run one statement on the admin connection (outside any transaction)."""
    engine = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def pg_problem() -> str | None:
    """Why the server cannot be used, or None when it answers."""
    try:
        engine = create_engine(pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]
    return None


def new_pg_database(prefix: str) -> str:
    """Create an empty database named ``<prefix><random>``; its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    return make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    pg_admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
