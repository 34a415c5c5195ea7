"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from mailroom.store.migrate import alembic_config, upgrade
from mailroom.store.models import Base, InboxItem
from mailroom.store.schema import current_revision, head_revision
from mailroom.store.search import include_in_schema_compare
from tests.conftest import create_pg_database, drop_pg_database


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_name": include_in_schema_compare})
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


def test_the_revisions_read_without_alembic_are_alembics(engine: Engine, tmp_path) -> None:
    from mailroom.store.db import make_engine

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        assert current_revision(engine) == MigrationContext.configure(conn) \
            .get_current_revision() == head_revision()
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(empty) is None
    empty.dispose()


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


def test_queued_mail_survives_the_composed_form_and_back(empty_url: str) -> None:
    """0004 keeps a queued mail's rendered form; going back to 0003 composes it into
    ``raw``, so the older code can still send it; coming up again, 0011 reads the
    composed bytes back into the same rendered form and drops ``raw``."""
    from mailroom.mailtypes import Address
    from mailroom.outbox.rendered import rendered_form
    from mailroom.store.db import make_engine
    from mailroom.store.models import OutboxItem

    eng = make_engine(empty_url)
    upgrade(eng)
    form = rendered_form(
        from_addr=Address("help@helpline.example", "Helpline"),
        to=(Address("jo@school.example", "Jo Teacher"),),
        cc=(Address("head@school.example", "Sam Head, Deputy"),), subject="Ré: [Helpline #7]",
        text="We have your message.\n\nÀ bientôt\n", html="<p>We have your message.</p>\n",
        message_id="mailroom.x1@helpline.example", in_reply_to="first@school.example",
        references=("zero@school.example", "first@school.example"),
        reply_to=Address("help+r-t7-abc@helpline.example", ""), auto_submitted="auto-replied",
        loop_token="helpline.example", extra_headers={"X-Mailroom-Ticket": "7"},
        date=datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    with Session(eng) as session, session.begin():
        session.add(OutboxItem(kind="acknowledgement", status="queued", message_id="x1",
                               mail_from="help@helpline.example", rcpt_to=["jo@school.example"],
                               to_addr="jo@school.example", rendered=form))
    cfg = alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
        raw = conn.execute(text("SELECT raw FROM outbox")).scalar_one()
    sent = email.message_from_bytes(raw, policy=default)
    assert sent["Message-ID"] == "<mailroom.x1@helpline.example>"
    assert sent["In-Reply-To"] == "<first@school.example>"
    assert sent["Subject"] == "Ré: [Helpline #7]" and sent["To"] == "Jo Teacher <jo@school.example>"
    assert "À bientôt" in sent.get_body(("plain",)).get_content()
    upgrade(eng)
    assert "raw" not in {c["name"] for c in inspect(eng).get_columns("outbox")}
    with Session(eng) as session:
        assert session.execute(select(OutboxItem.rendered)).scalar_one() == form
    eng.dispose()


def test_a_composed_mail_that_cannot_be_read_back_stops_the_upgrade(empty_url: str) -> None:
    """Nothing is guessed: the row is named and the outbox is left as it was."""
    from mailroom.store.db import make_engine

    eng = make_engine(empty_url)
    cfg = alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        conn.execute(text("INSERT INTO outbox (kind, status, message_id, mail_from, rcpt_to, "
                          "to_addr, subject, attempts, send_after, created_at, raw) VALUES "
                          "('acknowledgement', 'queued', 'x2', 'h@x.example', '[]', 'j@x.example', "
                          "'', 0, '2026-01-05', '2026-01-05', :raw)"),
                     {"raw": b"Subject: no sender here\r\n\r\nhello\r\n"})
    with pytest.raises(RuntimeError, match="outbox row 1: its mail cannot be read back"):
        upgrade(eng)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT raw FROM outbox")).scalar_one() is not None
    eng.dispose()


def test_cases_overdue_at_the_upgrade_count_as_notified(empty_url: str) -> None:
    """0014 marks the clocks already past due as warned and notified (no notice for every
    late case at the first run); a clock still running is warned and notified as usual."""
    from mailroom.store.db import make_engine
    from mailroom.store.models import Ticket

    eng = make_engine(empty_url)
    cfg = alembic_config()
    late, ahead = datetime(2020, 1, 6, 12, tzinfo=UTC), datetime(2999, 1, 6, 12, tzinfo=UTC)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
    with Session(eng) as session, session.begin():
        session.execute(Ticket.__table__.insert(), [  # type: ignore[attr-defined]
            {"reference": ref, "status": "open", "subject": "", "flags": [], "platforms": [],
             "created_at": late, "updated_at": late, "sla_due_at": due, "priority": "normal"}
            for ref, due in (("HL-1", late), ("HL-2", ahead), ("HL-3", None))])
    upgrade(eng)
    with Session(eng) as session:
        marks = {t.reference: (t.sla_warned_for, t.sla_breach_notified_for)
                 for t in session.execute(select(Ticket)).scalars()}
    assert marks == {"HL-1": (late, late), "HL-2": (None, None), "HL-3": (None, None)}
    eng.dispose()


def test_the_ticket_country_comes_and_goes_with_the_search_index_kept(empty_url: str) -> None:
    """0015 adds ``tickets.country`` in place (no copy of the table on SQLite), and its
    downgrade drops it the same way: a case stays searchable either way."""
    from mailroom.store.db import make_engine

    eng = make_engine(empty_url)
    cfg = alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.execute(text(
            "INSERT INTO tickets (reference, status, subject, flags, platforms, created_at, "
            "updated_at, priority) VALUES ('HL-000001', 'open', 'Fake account of Dunmore', "
            "'[]', '[]', :at, :at, 'normal')"), {"at": datetime(2026, 1, 5, tzinfo=UTC)})
    upgrade(eng)
    with eng.begin() as conn:
        assert conn.execute(text("SELECT country FROM tickets")).scalar_one() is None
        conn.execute(text("UPDATE tickets SET country = 'IE', subject = 'Fake account of "
                          "Dunmore school'"))
    assert _found(eng, "Dunmore school") == ["HL-000001"]
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
        assert "country" not in {c["name"] for c in inspect(conn).get_columns("tickets")}
        conn.execute(text("UPDATE tickets SET subject = 'Fake account of Kilkee school'"))
    upgrade(eng)
    assert _found(eng, "Kilkee") == ["HL-000001"] and _found(eng, "Dunmore") == []
    eng.dispose()


def _found(eng: Engine, words: str) -> list[str]:
    from mailroom.store.search import SearchQuery, search_ids, tickets_in_order

    with Session(eng) as session:
        ids = search_ids(session, SearchQuery.parse(words)).ids[:10]
        return [t.reference or "" for t in tickets_in_order(session, ids)]
