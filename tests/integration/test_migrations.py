"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from mailroom.store.migrate import alembic_config, current_revision, head_revision, upgrade
from mailroom.store.models import Base, InboxItem
from tests.conftest import create_pg_database, drop_pg_database


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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_upgrade_from_the_first_release_keeps_raw_mail(empty_url: str) -> None:
    """0001 kept the raw bytes in ``inbox.raw``; 0003 moves them to ``inbox_raw``
    without losing a byte, and the downgrade puts them back."""
    from mailroom.store.db import make_engine

    eng = make_engine(empty_url)
    cfg = alembic_config()
    raw = b"Message-ID: <old@school.example>\r\n\r\n" + bytes(range(256)) * 40
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text(
            "INSERT INTO inbox (received_at, door, rcpt_to, dedup_key, raw_sha256, size, raw, "
            "status, attempts) VALUES (:at, 'smtp', '[]', 'mid:old@school.example', '', "
            ":size, :raw, 'done', 1), (:at, 'smtp', '[]', 'mid:erased', '', 0, NULL, 'done', 1)"),
            {"at": datetime(2026, 1, 5, tzinfo=UTC), "size": len(raw), "raw": raw})
    upgrade(eng)
    with Session(eng) as session:
        rows = session.execute(select(InboxItem).order_by(InboxItem.id)).scalars().all()
        assert [row.raw for row in rows] == [raw, None]
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        assert conn.execute(text("SELECT raw FROM inbox ORDER BY id")).scalars().all() == [
            raw, None]
    eng.dispose()
