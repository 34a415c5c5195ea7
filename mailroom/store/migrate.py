"""Apply the Alembic migrations shipped in ``mailroom/migrations`` to a database.

Alembic runs programmatically, its script location taken from the installed
package (:mod:`mailroom.resources`): no ``alembic.ini`` is needed at run time.
Which revision a database has, and which is the newest shipped, is read without
Alembic (:mod:`mailroom.store.schema`).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from mailroom.resources import MIGRATIONS, shipped_path


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(shipped_path(MIGRATIONS)))
    if url:
        cfg.attributes["url"] = url
    return cfg


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision; return (before, after)."""
    cfg = alembic_config()
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after
