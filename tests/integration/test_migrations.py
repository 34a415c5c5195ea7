"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from mailroom.store.migrate import current_revision, head_revision, upgrade
from mailroom.store.models import Base


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_is_at_head_and_idempotent(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    tables_before = sorted(inspect(engine).get_table_names())
    before, after = upgrade(engine)
    assert before == after == head_revision()
    assert sorted(inspect(engine).get_table_names()) == tables_before
    assert {"inbox", "tickets", "messages", "outbox", "escalations", "events"} <= set(
        tables_before
    )


def test_upgrade_fresh_database(tmp_path) -> None:
    from mailroom.store.db import make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    before, after = upgrade(eng)
    assert before is None and after == head_revision()
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    eng.dispose()
