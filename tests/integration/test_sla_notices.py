"""Warnings before an answer is due and notices when it is overdue, on both databases:
when they go (business hours, once per clock), and who receives what (read from the
outbox rows and from the files the transport wrote)."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.sla_notices import link_free, send_sla_notices
from mailroom.runtime.describe import describe_settings
from mailroom.runtime.jobs import EVERY_JOB, SCHEDULED
from mailroom.store.models import Event, OutboxItem, Ticket
from tests.factories import PRACTITIONERS, FixedClock, as_sent, deliver, mail
from tests.integration.test_practitioner import (
    CASE_ID,
    TEACHER,
    open_case,
    plain_body,
    practitioner_reply,
)

ANNA, BEN = PRACTITIONERS
SUPERVISOR = "lead@helpline.example"
OPENED = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # Monday; London GMT, open 10:00-16:00
DUE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 8 business hours later: Tuesday 13:00
WARN = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 1 business hour before
SLA_KINDS = ("sla_warning", "sla_breach")


def the_ticket(app: App) -> Ticket:
    with app.sessions() as session:
        return session.execute(select(Ticket)).scalar_one()


def sla_rows(app: App) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).where(
            OutboxItem.kind.in_(SLA_KINDS)).order_by(OutboxItem.id)).scalars())


def received(app: App, address: str) -> list[str]:
    """The kinds of SLA mail ``address`` was sent, oldest first."""
    return [row.kind for row in sla_rows(app) if address in row.rcpt_to]


def mails_to(app: App, address: str) -> list[EmailMessage]:
    return [as_sent(app, row) for row in sla_rows(app) if address in row.rcpt_to]


def sla_events(app: App) -> list[Event]:
    with app.sessions() as session:
        return list(session.execute(select(Event).where(Event.action.like("sla.%"))
                                    .order_by(Event.id)).scalars())


def assigned_case(app: App, assignee: str = ANNA) -> EmailMessage:
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, "#assign me\n", sender=assignee))
    return notification


def at(clock: FixedClock, moment: datetime, app: App) -> dict[str, int]:
    clock.now = moment
    return send_sla_notices(app)


# --- when ----------------------------------------------------------------------------------


def test_the_assignee_is_warned_one_business_hour_before_and_notified_at_the_breach(  # type: ignore[no-untyped-def]
    make_app,
) -> None:
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": SUPERVISOR})
    assigned_case(app)
    assert the_ticket(app).sla_due_at == DUE
    assert at(clock, datetime(2026, 3, 3, 11, 59, tzinfo=UTC), app) == {}
    assert at(clock, WARN, app) == {"warned": 1}
    assert send_sla_notices(app) == {}  # once
    assert at(clock, datetime(2026, 3, 3, 12, 59, tzinfo=UTC), app) == {}
    assert at(clock, DUE, app) == {"breached": 1}
    assert at(clock, datetime(2026, 3, 4, 12, 0, tzinfo=UTC), app) == {}  # once
    assert received(app, ANNA) == ["sla_warning", "sla_breach"]
    assert received(app, SUPERVISOR) == ["sla_breach"]
    assert [(e.action, e.actor, e.detail["answer"], e.detail["due"], e.detail["to"],
             e.detail["supervisor"]) for e in sla_events(app)] == [
        ("sla.warned", "system", "first", DUE.isoformat(), [ANNA], None),
        ("sla.breached", "system", "first", DUE.isoformat(), [ANNA], SUPERVISOR)]


def test_only_business_hours_count(make_app) -> None:  # type: ignore[no-untyped-def]
    """Opened on Monday at 15:30, due on Wednesday at 11:30: the night before does not
    bring the warning forward; Wednesday's opening hour does."""
    clock = FixedClock(datetime(2026, 3, 2, 15, 30, tzinfo=UTC))
    app = make_app(clock=clock)
    open_case(app)
    assert the_ticket(app).sla_due_at == datetime(2026, 3, 4, 11, 30, tzinfo=UTC)
    assert at(clock, datetime(2026, 3, 3, 16, 0, tzinfo=UTC), app) == {}  # 1.5 hours left
    assert at(clock, datetime(2026, 3, 4, 7, 0, tzinfo=UTC), app) == {}  # still 1.5 left
    assert at(clock, datetime(2026, 3, 4, 10, 29, tzinfo=UTC), app) == {}
    assert at(clock, datetime(2026, 3, 4, 10, 30, tzinfo=UTC), app) == {"warned": 1}


def test_a_warning_can_come_earlier(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"warn_before_hours": 2.5})
    open_case(app)
    assert at(clock, datetime(2026, 3, 3, 10, 29, tzinfo=UTC), app) == {}
    assert at(clock, datetime(2026, 3, 3, 10, 30, tzinfo=UTC), app) == {"warned": 1}


def test_warnings_turned_off(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"warn_before_hours": 0})
    open_case(app)
    assert at(clock, WARN, app) == {}
    assert at(clock, DUE, app) == {"breached": 1}  # the breach is notified all the same


def test_an_urgent_case_is_warned_of_as_soon_as_its_clock_starts(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    deliver(app, mail(body="A pupil is a victim of sextortion: webcam blackmail.\n"))
    assert the_ticket(app).sla_due_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert send_sla_notices(app) == {"warned": 1}
    assert "Priority: urgent | category: sextortion" in plain_body(mails_to(app, ANNA)[0])


def test_a_clock_already_past_due_gets_the_breach_notice_alone(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    open_case(app)
    assert at(clock, datetime(2026, 3, 5, 12, 0, tzinfo=UTC), app) == {"breached": 1}
    assert send_sla_notices(app) == {}
    assert [row.kind for row in sla_rows(app)] == ["sla_breach"]


def test_a_clock_started_again_is_warned_of_again_the_same_one_never_twice(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    notification = assigned_case(app)
    assert at(clock, WARN, app) == {"warned": 1}
    deliver(app, practitioner_reply(notification, "We are looking at it."))
    assert the_ticket(app).sla_due_at is None  # answered: the clock stops
    assert at(clock, datetime(2026, 3, 9, 12, 0, tzinfo=UTC), app) == {}  # nothing due
    deliver(app, mail(sender=TEACHER, in_reply_to=CASE_ID, subject="Re: more",
                      body="There is a second account now.\n"))  # Monday 9 March, 12:00
    due = the_ticket(app).sla_due_at
    assert due == datetime(2026, 3, 11, 16, 0, tzinfo=UTC)  # 16 business hours: Wednesday
    assert at(clock, datetime(2026, 3, 11, 14, 59, tzinfo=UTC), app) == {}
    assert at(clock, datetime(2026, 3, 11, 15, 0, tzinfo=UTC), app) == {"warned": 1}
    assert send_sla_notices(app) == {}
    [first, second] = mails_to(app, ANNA)
    assert "the first answer is due" in plain_body(first)
    assert "the next answer is due Wednesday 11 March 2026 at 16:00 GMT" in plain_body(second)


def test_an_answered_case_is_not_warned(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    notification = assigned_case(app)
    deliver(app, practitioner_reply(notification, "We are looking at it."))
    assert at(clock, WARN, app) == {} and at(clock, DUE, app) == {}
    assert sla_rows(app) == []


@pytest.mark.parametrize("command", ["#close", "#spam", "#out-of-remit", "#test"])
def test_a_closed_or_set_aside_case_is_not_warned(make_app, command: str) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, f"{command}\n#note\nNothing to answer."))
    ticket = the_ticket(app)
    assert ticket.status != "open" and ticket.sla_due_at is not None  # the clock is left
    assert at(clock, WARN, app) == {} and at(clock, DUE, app) == {}
    assert sla_rows(app) == []


def test_a_change_of_priority_moves_the_warning(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    notification = assigned_case(app)
    deliver(app, practitioner_reply(notification, "#priority low\n#note\nNot pressing."))
    low_due = the_ticket(app).sla_due_at  # 24 business hours from the opening
    assert low_due == datetime(2026, 3, 6, 11, 0, tzinfo=UTC)
    assert at(clock, WARN, app) == {}  # the warning of priority normal is gone
    assert at(clock, datetime(2026, 3, 6, 10, 0, tzinfo=UTC), app) == {"warned": 1}
    deliver(app, practitioner_reply(notification, "#priority high\n#note\nIt is, after all."))
    # four business hours from the opening: long past, so the breach is notified now
    assert the_ticket(app).sla_due_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert send_sla_notices(app) == {"breached": 1}
    assert [e.detail["due"] for e in sla_events(app)] == [
        low_due.isoformat(), datetime(2026, 3, 2, 15, 0, tzinfo=UTC).isoformat()]


# --- who receives what ---------------------------------------------------------------------


def test_who_receives_what_with_an_assignee(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": SUPERVISOR})
    deliver(app, mail(message_id=CASE_ID, subject="Fake account https://www.tiktok.com/@fakehead",
                      body="The secret words of the case.\nhttps://www.tiktok.com/@fakehead\n",
                      attachments=[("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n" * 50)]))
    notification = as_sent(app, [r for r in _all_rows(app) if r.kind == "notification"][0])
    assert [p.get_filename() for p in notification.walk() if p.get_filename()] == [
        "screenshot.png"]  # the practitioners' notification carries it
    deliver(app, practitioner_reply(notification, "#assign me\n#category impersonation\n"
                                                  "#priority high\n"))
    due = the_ticket(app).sla_due_at
    assert due is not None
    clock.now = due
    assert send_sla_notices(app) == {"breached": 1}
    [to_anna] = mails_to(app, ANNA)
    [to_lead] = mails_to(app, SUPERVISOR)
    assert mails_to(app, BEN) == [] and mails_to(app, TEACHER) == []
    anna_text, lead_text = plain_body(to_anna), plain_body(to_lead)
    for text in (anna_text, lead_text):
        assert "HL-000001: the first answer is overdue; it was due Monday 2 March 2026 at " \
               "15:00 GMT." in text
        assert "Subject: Fake account [link]" in text
        assert ("Priority: high | category: impersonation | status: open | assigned to: "
                "anna@helpline.example") in text
        for secret in ("secret words", TEACHER, "tiktok.com", "Jo Teacher", "http"):
            assert secret not in text and secret not in str(to_anna["Subject"])
    assert "SLA supervisor" in lead_text and "#assign" not in lead_text
    assert "SLA supervisor" not in anna_text and "#status" in anna_text  # the commands
    assert to_lead["Reply-To"] is None  # a reply reaches the case, not as a practitioner
    assert to_anna["Reply-To"].addresses[0].addr_spec.startswith("helpline+p-")
    assert to_anna["Auto-Submitted"] == to_lead["Auto-Submitted"] == "auto-generated"
    assert [p.get_filename() for p in (*to_anna.walk(), *to_lead.walk()) if p.get_filename()] \
        == []  # the notices carry no file of the case


def test_with_nobody_assigned_every_practitioner_is_told(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": SUPERVISOR})
    open_case(app)
    at(clock, WARN, app)
    at(clock, DUE, app)
    assert received(app, ANNA) == received(app, BEN) == ["sla_warning", "sla_breach"]
    assert received(app, SUPERVISOR) == ["sla_breach"] and received(app, TEACHER) == []
    assert "assign the case with #assign" in plain_body(mails_to(app, ANNA)[-1])


def test_a_team_address_is_told_alone(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, practitioners={"addresses": list(PRACTITIONERS),
                                               "team_address": "team@helpline.example"})
    open_case(app)
    at(clock, WARN, app)
    at(clock, DUE, app)
    assert [row.rcpt_to for row in sla_rows(app)] == [["team@helpline.example"]] * 2


def test_a_supervisor_who_is_the_assignee_gets_one_mail(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": ANNA})
    assigned_case(app)
    assert at(clock, DUE, app) == {"breached": 1}
    assert [row.rcpt_to for row in sla_rows(app)] == [[ANNA]]
    assert sla_events(app)[-1].detail["supervisor"] is None


def test_a_reply_to_the_supervisors_copy_reaches_nobody_outside_the_team(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": SUPERVISOR})
    assigned_case(app)
    at(clock, DUE, app)
    [copy] = mails_to(app, SUPERVISOR)
    assert queued_by(app, reply_to_copy(copy, SUPERVISOR, "Lead",
                                        "Anna, please look at this today.\n")) == [
        ("notification", [ANNA])]  # kept, told


def test_a_practitioner_who_is_the_supervisor_runs_nothing_by_replying_to_the_copy(  # type: ignore[no-untyped-def]
    make_app,
) -> None:
    clock = FixedClock(OPENED)
    app = make_app(clock=clock, sla={"supervisor": BEN})
    assigned_case(app)
    at(clock, DUE, app)
    [copy] = mails_to(app, BEN)
    assert queued_by(app, reply_to_copy(copy, BEN, "Ben",
                                        "#close\nWe cannot help with this one.\n")) == [
        ("notification", [ANNA])]  # kept, told
    assert the_ticket(app).status == "open"


def test_a_reply_to_the_warning_answers_the_professional_and_stops_the_clock(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(OPENED)
    app = make_app(clock=clock)
    assigned_case(app)
    at(clock, WARN, app)
    [warning] = mails_to(app, ANNA)
    deliver(app, practitioner_reply(warning, "We have reported the account for you."))
    relays = [r for r in _all_rows(app) if r.kind == "relay"]
    assert [r.rcpt_to for r in relays] == [[TEACHER]]
    assert the_ticket(app).sla_due_at is None
    assert at(clock, DUE, app) == {}


def test_the_job_is_scheduled_and_ticked() -> None:
    assert any(job.run is send_sla_notices and not job.gated for job in SCHEDULED)
    names = [job.name for job in EVERY_JOB]
    assert names.index("sla_notices") < names.index("send_outbox")  # sent in the same tick


def test_check_config_says_when_warnings_go_and_who_gets_the_copy(make_app) -> None:  # type: ignore[no-untyped-def]
    configured = make_app(sla={"warn_before_hours": 2, "supervisor": SUPERVISOR})
    assert describe_settings(configured.settings, {})["sla notices"] == (
        "warning 2 business hours before an answer is due; breach notices copied to "
        "lead@helpline.example")
    off = make_app(sla={"warn_before_hours": 0})
    assert describe_settings(off.settings, {})["sla notices"] == (
        "no warnings; breach notices to the case's practitioners only (no sla.supervisor)")


def test_links_are_taken_out_of_a_subject() -> None:
    assert link_free("See https://x.example/a?b and www.tiktok.com/@u or tiktok.com/@v, "
                     "mail jo@school.example, rated 3.5/10") == (
        "See [link] and [link] or [link] mail jo@school.example, rated 3.5/10")


def reply_to_copy(copy: EmailMessage, sender: str, name: str, body: str) -> bytes:
    """A reply to a breach notice's copy, to the address it came from."""
    return mail(sender=sender, name=name, to=str(copy["From"].addresses[0].addr_spec),
                subject=f"Re: {copy['Subject']}", in_reply_to=copy["Message-ID"].strip("<>"),
                body=body)


def queued_by(app: App, raw: bytes) -> list[tuple[str, list[str]]]:
    """What delivering ``raw`` queued: each new outbox row's kind and recipients."""
    before = {r.id for r in _all_rows(app)}
    deliver(app, raw)
    return [(r.kind, r.rcpt_to) for r in _all_rows(app) if r.id not in before]


def _all_rows(app: App) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


# --- through `mailroom tick --now` ---------------------------------------------------------


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    """The `cli` fixture's App: a supervisor is configured."""
    return make_app(clock=FixedClock(OPENED), sla={"supervisor": SUPERVISOR})


def mailboxes(app: App) -> dict[str, list[str]]:
    """The subjects each address received, from the files the transport wrote."""
    found: dict[str, list[str]] = {}
    for path in sorted(app.settings.sent_dir.glob("*.eml")):
        sent = email.message_from_bytes(path.read_bytes())
        for address in str(sent["X-Mailroom-Rcpt-To"]).split(","):
            found.setdefault(address.strip(), []).append(" ".join(str(sent["Subject"]).split()))
    return found


def test_tick_warns_and_notifies(app: App, cli: Any) -> None:
    assigned_case(app)
    status, out, _ = cli("tick", "--now", "2026-03-03T11:00:00Z", "--json")
    assert status == 0 and json.loads(out)["sla_notices"] == {}
    before = mailboxes(app)
    status, out, _ = cli("tick", "--now", "2026-03-03T12:00:00Z", "--json")
    assert status == 0 and json.loads(out)["sla_notices"] == {"warned": 1}
    status, out, _ = cli("tick", "--now", "2026-03-03T13:00:00Z", "--json")
    assert status == 0 and json.loads(out)["sla_notices"] == {"breached": 1}
    status, out, _ = cli("tick", "--now", "2026-03-03T15:00:00Z", "--json")
    assert status == 0 and json.loads(out)["sla_notices"] == {}
    after = mailboxes(app)
    new = {who: subjects[len(before.get(who, [])):] for who, subjects in after.items()}
    overdue = "[Helpline #1] Overdue: first answer of HL-000001: Comments about me on Facebook"
    assert new[ANNA] == [
        "[Helpline #1] Due soon: first answer of HL-000001: Comments about me on Facebook",
        overdue]
    assert new[SUPERVISOR] == [overdue]
    assert {who for who, subjects in new.items() if subjects} == {ANNA, SUPERVISOR}  # not Ben
    assert TEACHER in new and BEN in new  # both received mail before: none of this
    assert before.get(SUPERVISOR) is None and TEACHER in before  # (acknowledged earlier)
    [copy] = [path.read_bytes() for path in app.settings.sent_dir.glob("*.eml")
              if f"X-Mailroom-Rcpt-To: {SUPERVISOR}\n".encode() in path.read_bytes()]
    assert b"SLA supervisor" in copy and TEACHER.encode() not in copy  # the body, plain
    assert b"Parents are posting" not in copy and b"Jo Teacher" not in copy
