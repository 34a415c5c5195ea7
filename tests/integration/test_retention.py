"""Retention: closed cases past the period lose their content, keep their statistics."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.privacy.retention import apply_retention, months_before
from mailroom.reports.data import Period, build_report
from mailroom.runtime.jobs import RETENTION
from mailroom.runtime.scheduler import run_job
from mailroom.sending.sender import send_due
from mailroom.store.models import (
    AttachmentRow,
    Escalation,
    Event,
    InboxItem,
    Message,
    OutboxItem,
    Participant,
    Ticket,
)
from mailroom.vocabulary import SET_ASIDE
from tests.factories import FixedClock, deliver, mail
from tests.report_dataset import comparable, run_cli

NOW = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
LONG_AGO = datetime(2024, 12, 2, 12, 0, tzinfo=UTC)  # 15 months: due (12 by default)
RECENTLY = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # 9 months: kept
SHARED = b"\x89PNG shared screenshot bytes"
THIS_QUARTER = Period(date(2026, 1, 1), date(2026, 3, 31))


def mail_with(attachment: bytes, filename: str, **fields: str) -> bytes:
    message = email.message_from_bytes(mail(**fields), policy=email.policy.default)
    message.add_attachment(attachment, maintype="image", subtype="png",  # type: ignore[attr-defined]
                           filename=filename)
    return message.as_bytes()


@dataclass
class Cases:
    old: int  # closed long ago, attachment shared with `open`
    other_old: int  # closed long ago, its own attachment
    open: int
    recent: int  # closed recently
    own: str  # sha256 of other_old's attachment


def open_case(app: App, sender: str, name: str, subject: str, attachment: bytes) -> int:
    raw = mail_with(attachment, f"{name.split()[0].lower()} evidence.png", sender=sender,
                    name=name, subject=subject,
                    body=f"{name} writes about {subject}: https://www.tiktok.com/@fake\n")
    assert deliver(app, raw) == "created"
    with app.sessions() as session:
        return session.execute(select(func.max(Ticket.id))).scalar_one()


def close(app: App, ticket_id: int, at: datetime, **stats: object) -> None:
    with app.sessions.begin() as session:
        ticket = session.get_one(Ticket, ticket_id)
        ticket.status, ticket.closed_at = "closed", at
        for key, value in stats.items():
            setattr(ticket, key, value)


@pytest.fixture
def cases(app: App) -> Cases:
    own = b"\x89PNG only on the other old case"
    found = Cases(
        old=open_case(app, "jo@school.example", "Jo Teacher", "Fake account of Mrs Smith",
                      SHARED),
        other_old=open_case(app, "kim@police.example", "Kim Officer", "Threats to PC Jones",
                            own),
        open=open_case(app, "sam@school.example", "Sam Head", "Same screenshot", SHARED),
        recent=open_case(app, "lee@care.example", "Lee Carer", "Recent case", b"recent"),
        own=hashlib.sha256(own).hexdigest(),
    )
    send_due(app)
    close(app, found.old, LONG_AGO, category="impersonation", role="teacher",
          first_response_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    escalate(app, found.old)
    close(app, found.other_old, LONG_AGO, category="threats", role="police")
    close(app, found.recent, RECENTLY)
    return found


def escalate(app: App, ticket_id: int) -> None:
    with app.sessions.begin() as session:
        session.add(Escalation(
            ticket_id=ticket_id, platform="tiktok", status="responded", opened_at=NOW,
            responded_at=datetime(2026, 3, 2, 15, 0, tzinfo=UTC), outcome="removed",
            context="Mrs Smith's account impersonates her", follow_ups=0,
            urls=["https://www.tiktok.com/@fake"]))


def stats(app: App) -> dict[str, object]:
    report = build_report(app, THIS_QUARTER)
    assert report.cases.current == 4 and report.escalation_total.opened == 1
    return comparable(report)


def rows(app: App, model: type, *where: object) -> list:  # type: ignore[type-arg]
    with app.sessions() as session:
        return list(session.execute(select(model).where(*where)).scalars())


def message_ids(app: App, ticket_id: int) -> list[int]:
    return [m.id for m in rows(app, Message, Message.ticket_id == ticket_id)]


def test_dry_run_counts_without_changing_anything(app: App, cases: Cases) -> None:
    before = _snapshot(app)
    dry = apply_retention(app, dry_run=True)
    assert _snapshot(app) == before
    assert dry.tickets == [f"HL-{cases.old:06d}", f"HL-{cases.other_old:06d}"]
    assert dry.blobs == 1  # the shared screenshot is still used by the open case
    done = apply_retention(app, dry_run=False)
    assert (done.tickets, done.counts, done.blobs) == (dry.tickets, dry.counts, dry.blobs)
    assert done.counts.messages == len(message_ids(app, cases.old)) * 2 >= 4
    assert (done.counts.inbound_raw, done.counts.attachments, done.counts.participants) == (
        2, 2, 2)


def test_purge_removes_content_and_keeps_statistics(app: App, cases: Cases) -> None:
    before = stats(app)
    assert before.pop("repeat_accounts") == [
        {"platform": "tiktok", "name": "TikTok", "accounts": 1, "cases": 4}]
    apply_retention(app, dry_run=False)
    for ticket_id in (cases.old, cases.other_old):
        _assert_purged(app, ticket_id)
    assert not app.blobs.path_for(cases.own).exists()
    assert app.blobs.exists(hashlib.sha256(SHARED).hexdigest())
    for ticket_id in (cases.open, cases.recent):
        _assert_untouched(app, ticket_id)
    after = stats(app)
    # the repeat reports go with the messages that made them: the purged cases no longer count
    assert after.pop("repeat_accounts") == [
        {"platform": "tiktok", "name": "TikTok", "accounts": 1, "cases": 2}]
    assert after == before
    ticket = rows(app, Ticket, Ticket.id == cases.old)[0]
    assert (ticket.category, ticket.role, ticket.platforms) == (
        "impersonation", "teacher", ["tiktok"])
    assert ticket.first_response_at is not None and ticket.created_at is not None


def _assert_purged(app: App, ticket_id: int) -> None:
    ids = message_ids(app, ticket_id)
    ticket = rows(app, Ticket, Ticket.id == ticket_id)[0]
    assert (ticket.subject, ticket.requester_name, ticket.purged_at) == ("", None, NOW)
    assert all((m.text, m.subject, m.sender_name, m.urls) == (None, "", None, [])
               for m in rows(app, Message, Message.id.in_(ids)))
    assert all(i.raw is None for i in rows(app, InboxItem, InboxItem.message_pk.in_(ids)))
    outbox = rows(app, OutboxItem, OutboxItem.ticket_id == ticket_id)
    assert outbox and all(o.rendered is None and o.subject == ""
                          for o in outbox)
    attachments = rows(app, AttachmentRow, AttachmentRow.message_pk.in_(ids))
    assert attachments and all(not a.stored and a.filename == "" for a in attachments)
    assert all(p.name is None for p in rows(app, Participant, Participant.ticket_id == ticket_id))
    assert all((e.context, e.urls, e.outcome) == (None, [], "removed")
               for e in rows(app, Escalation, Escalation.ticket_id == ticket_id))
    events = rows(app, Event, Event.ticket_id == ticket_id, Event.action == "retention.purged")
    assert len(events) == 1 and events[0].detail == {"months": 12,
                                                     "cutoff": "2025-03-02T11:00:00+00:00"}


def _assert_untouched(app: App, ticket_id: int) -> None:
    ids = message_ids(app, ticket_id)
    assert rows(app, Ticket, Ticket.id == ticket_id)[0].purged_at is None
    assert all(m.text for m in rows(app, Message, Message.id.in_(ids)) if m.direction == "in")
    assert all(i.raw for i in rows(app, InboxItem, InboxItem.message_pk.in_(ids)))
    attachments = rows(app, AttachmentRow, AttachmentRow.message_pk.in_(ids))
    assert all(a.stored and app.blobs.exists(a.sha256) for a in attachments)


def test_second_run_finds_nothing_then_a_reclosed_case_goes_again(
    make_app: Callable[..., App],
) -> None:
    clock = FixedClock(NOW)
    app = make_app(clock=clock)
    old = open_case(app, "jo@school.example", "Jo Teacher", "First", SHARED)
    first_id = rows(app, Message, Message.ticket_id == old, Message.direction == "in")[0]
    close(app, old, LONG_AGO)
    assert len(apply_retention(app, dry_run=False).tickets) == 1
    again = apply_retention(app, dry_run=False)
    assert (again.tickets, again.counts.messages, again.blobs) == ([], 0, 0)
    clock.advance(days=1)  # the requester writes again; the case is reopened, then closed
    reply = mail(sender="jo@school.example", subject="Re: First", date=clock.now,
                 in_reply_to=first_id.message_id, body="One more thing about Mrs Smith.\n")
    assert deliver(app, reply) == "threaded"
    close(app, old, clock.now)
    clock.advance(days=400)
    third = apply_retention(app, dry_run=False)
    assert third.tickets == [f"HL-{old:06d}"] and third.counts.messages >= 1
    assert all(m.text is None for m in rows(app, Message, Message.ticket_id == old))


def test_daily_job_runs_once_per_day(app: App, cases: Cases) -> None:
    job = RETENTION
    assert job.gated and job.every.days == 1
    first = run_job(app, job)
    assert first["tickets"] == 2 and first["blobs"] == 1
    assert run_job(app, job) == "not due"


def test_cli_retention_dry_run_json(app: App, cases: Cases,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    status = run_cli(["--config", str(app.settings.source), "retention", "--dry-run", "--json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True  # the command runs on the real clock: LONG_AGO is due
    assert {f"HL-{cases.old:06d}", f"HL-{cases.other_old:06d}"} <= set(data["tickets"])
    assert rows(app, Ticket, Ticket.purged_at.is_not(None)) == []


@pytest.mark.parametrize(("moment", "months", "expected"), [
    (datetime(2026, 3, 31, 9, tzinfo=UTC), 1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
    (datetime(2026, 1, 15, tzinfo=UTC), 12, datetime(2025, 1, 15, tzinfo=UTC)),
    (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2023, 2, 28, tzinfo=UTC)),
    (datetime(2026, 3, 2, tzinfo=UTC), 14, datetime(2025, 1, 2, tzinfo=UTC)),
], ids=["month-end", "a-year", "leap-day", "across-years"])
def test_months_before(moment: datetime, months: int, expected: datetime) -> None:
    assert months_before(moment, months) == expected


def _snapshot(app: App) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for model in (Ticket, Message, InboxItem, OutboxItem, AttachmentRow, Participant, Event):
        for row in rows(app, model):
            out.append(tuple(getattr(row, c.key) for c in model.__table__.columns))
    return out


@pytest.mark.parametrize("status", SET_ASIDE, ids=SET_ASIDE)
def test_a_case_set_aside_is_purged_like_a_closed_one(make_app, status: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=FixedClock(NOW))
    ticket_id = open_case(app, "jo@school.example", "Jo Teacher", "Mrs Smith's account", SHARED)
    close(app, ticket_id, LONG_AGO, status=status,
          escalation_context="The account uses Mrs Smith's photo")
    result = apply_retention(app, dry_run=False)
    assert result.tickets == ["HL-000001"]
    with app.sessions() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert (ticket.subject, ticket.escalation_context) == ("", None)
        assert ticket.purged_at == NOW
