"""The daily digest: what the team receives at opening time, and nobody else."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.escalations import open_escalation
from mailroom.reports.digest import send_daily_digest
from mailroom.runtime.jobs import EVERY_JOB, SCHEDULED
from mailroom.store.models import OutboxItem, Ticket
from tests.factories import PRACTITIONERS, FixedClock, as_sent, deliver, mail
from tests.integration.test_delivery_failures import dsn
from tests.integration.test_participants_cli import cli
from tests.integration.test_practitioner import outbox, practitioner_reply

THURSDAY = datetime(2026, 2, 26, 11, 0, tzinfo=UTC)  # London: GMT, open 10:00-16:00
MONDAY = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
TUESDAY_EARLY = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
TUESDAY_OPEN = datetime(2026, 3, 3, 10, 5, tzinfo=UTC)
ON = {"enabled": True}  # tests/factories turns it off for every other test


def week(make_app) -> tuple[App, FixedClock]:  # type: ignore[no-untyped-def]
    """Four cases: one overdue, two due today (one escalated, one whose mail bounces), one
    waiting on the professional; an unreadable message."""
    clock = FixedClock(THURSDAY)
    app = make_app(clock=clock, digest=ON)
    deliver(app, mail(sender="old@school.example", subject="Old unanswered case",
                      message_id="c1@school.example", body="Please help.\n"))
    clock.now = MONDAY
    deliver(app, mail(sender="new@school.example", subject="Fake account of our head",
                      message_id="c2@school.example", body="https://www.tiktok.com/@fake\n"))
    deliver(app, mail(sender="wait@school.example", subject="Bullying on Instagram",
                      message_id="c3@school.example", body="Secret text of case three.\n"))
    notification = [m for m in outbox(app, "notification") if "Bullying" in m["Subject"]][0]
    deliver(app, practitioner_reply(notification, "#assign me\n\nCould you send a screenshot?"))
    deliver(app, mail(sender="gone@school.example", subject="Address that bounces",
                      message_id="c4@school.example", body="Hello.\n"))
    ack = [m for m in outbox(app, "acknowledgement") if "bounces" in m["Subject"]][0]
    deliver(app, dsn(ack, "gone@school.example"), mail_from="")
    deliver(app, b"")  # an unreadable message: bad
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket).where(Ticket.reference == "HL-000002")).scalar_one()
        open_escalation(app, session, ticket, "tiktok", urls=None, context=None,
                        actor="anna@helpline.example")
    return app, clock


def digests(app: App) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).where(OutboxItem.kind == "digest")
                                    .order_by(OutboxItem.id)).scalars())


def the_digest_text(app: App) -> str:
    """The one digest queued, its plain text as the team reads it."""
    [item] = digests(app)
    return str(as_sent(app, item).get_body(("plain",)).get_content()).replace("\r\n", "\n")


def test_the_team_gets_one_digest_at_opening_time(make_app) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    clock.now = TUESDAY_EARLY
    assert send_daily_digest(app) == {}  # not open yet
    clock.now = TUESDAY_OPEN
    assert send_daily_digest(app) == {"digest": 1}
    assert send_daily_digest(app) == {}  # once a day
    [item] = digests(app)
    assert sorted(item.rcpt_to) == sorted(PRACTITIONERS)  # no team address: every practitioner
    text = the_digest_text(app)
    assert ("ANSWER OVERDUE (1)\n- HL-000001  Old unanswered case  | unassigned | "
            "first answer due Friday 27 February 2026 at 13:00 GMT\n") in text
    assert ("ANSWER DUE TODAY (2)\n- HL-000002  Fake account of our head  | unassigned | "
            "first answer due 13:00\n- HL-000004  Address that bounces  | unassigned | "
            "first answer due 13:00\n") in text
    assert ("WAITING ON THE PROFESSIONAL (1)\n- HL-000003  Bullying on Instagram  | "
            "anna@helpline.example | since Monday 2 March 2026") in text
    assert ("ESCALATIONS AWAITING PLATFORMS (1)\n- HL-000002  TikTok, sent Monday 2 March 2026, "
            "0 follow-ups; next chase Thursday 5 March 2026 at 11:00 GMT\n\n") in text
    assert "ADDRESSES WHOSE MAIL BOUNCES (1)\n- HL-000004  gone@school.example since" in text
    assert "- 1 message left bad" in text
    for secret in ("Secret text of case three", "old@school.example", "new@school.example",
                   "wait@school.example", "tiktok.com/@fake"):
        assert secret not in text
    clock.advance(days=1)  # Wednesday, open: a new day, a new digest
    assert send_daily_digest(app) == {"digest": 1}


def test_nobody_outside_the_team_receives_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    clock.now = TUESDAY_OPEN
    send_daily_digest(app)
    with app.sessions() as session:
        kinds = {(i.kind, r) for i in session.execute(select(OutboxItem)).scalars()
                 for r in i.rcpt_to}
    assert {r for k, r in kinds if k == "digest"} == set(PRACTITIONERS)


def test_a_team_address_receives_it_alone(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=FixedClock(TUESDAY_OPEN), digest=ON,
                   practitioners={"addresses": list(PRACTITIONERS),
                                  "team_address": "team@helpline.example"})
    assert send_daily_digest(app) == {"digest": 1}
    [item] = digests(app)
    assert item.rcpt_to == ["team@helpline.example"]
    assert "Nothing is open, waiting" in the_digest_text(app)


def test_it_can_be_turned_off(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=FixedClock(TUESDAY_OPEN), digest={"enabled": False})
    assert send_daily_digest(app) == {} and digests(app) == []


def test_the_job_is_scheduled_and_ticked() -> None:
    assert any(job.run is send_daily_digest and job.gated for job in SCHEDULED)
    assert any(job.run is send_daily_digest for job in EVERY_JOB)


def test_the_command_prints_it_or_sends_it_now(make_app, capsys) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    clock.now = TUESDAY_EARLY  # closed: the command does not wait for opening time
    assert cli(app, "digest") == 0
    assert "ANSWER OVERDUE" in capsys.readouterr().out and digests(app) == []
    assert cli(app, "digest", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["reference"] for c in data["waiting"]] == ["HL-000003"] and data["bad"] == 1
    assert cli(app, "digest", "--now") == 0
    assert len(digests(app)) == 1


def test_an_escalation_of_a_closed_case_shows_no_next_chase(make_app) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket).where(Ticket.reference == "HL-000002")).scalar_one()
        ticket.status = "closed"
    clock.now = TUESDAY_OPEN
    assert send_daily_digest(app) == {"digest": 1}
    text = the_digest_text(app)
    assert ("- HL-000002  TikTok, sent Monday 2 March 2026, 0 follow-ups; the case is closed: "
            "not chased\n") in text
    assert "next chase" not in text


def test_a_next_answer_overdue_and_a_case_due_later_are_listed(make_app) -> None:  # type: ignore[no-untyped-def]
    clock = FixedClock(MONDAY)
    app = make_app(clock=clock, digest=ON)
    deliver(app, mail(sender="jo@school.example", subject="Posts about me",
                      message_id="d1@school.example", body="Please help.\n"))
    [notification] = outbox(app, "notification")
    deliver(app, practitioner_reply(notification, "We are looking at it."))
    clock.now = MONDAY.replace(hour=13)  # the professional writes again: the next answer is due
    deliver(app, mail(sender="jo@school.example", subject="Re: Posts about me",
                      message_id="d2@school.example", in_reply_to="d1@school.example",
                      body="There is another one.\n"))
    deliver(app, mail(sender="new@school.example", subject="A new case",
                      message_id="d3@school.example", body="Hello.\n"))
    clock.now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    deliver(app, mail(sender="late@school.example", subject="A later case",
                      message_id="d4@school.example", body="Hello.\n"))
    clock.now = datetime(2026, 3, 5, 10, 5, tzinfo=UTC)  # Thursday, opening time
    assert send_daily_digest(app) == {"digest": 1}
    text = the_digest_text(app)
    assert ("ANSWER OVERDUE (1)\n- HL-000002  A new case  | unassigned | first answer due "
            "Tuesday 3 March 2026 at 15:00 GMT\n") in text
    assert ("ANSWER DUE TODAY (1)\n- HL-000001  Posts about me  | unassigned | next answer due "
            "11:00\n") in text
    assert ("OPEN, DUE LATER (1)\n- HL-000003  A later case  | unassigned | first answer due "
            "Friday 6 March 2026 at 11:00 GMT\n") in text


def test_a_case_set_aside_is_not_in_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    with app.sessions.begin() as session:  # the case whose mail bounces, and one overdue
        for ticket in session.execute(select(Ticket).where(
                Ticket.reference.in_(("HL-000001", "HL-000004")))).scalars():
            ticket.status = "spam" if ticket.reference == "HL-000004" else "test"
    clock.now = TUESDAY_OPEN
    assert send_daily_digest(app) == {"digest": 1}
    text = the_digest_text(app)
    assert "HL-000004" not in text and "gone@school.example" not in text
    assert "HL-000001" not in text


def test_a_waiting_case_waits_since_its_last_answer(make_app) -> None:  # type: ignore[no-untyped-def]
    app, clock = week(make_app)
    clock.now = TUESDAY_EARLY  # an internal note on the waiting case: no answer to anyone
    notification = [m for m in outbox(app, "notification") if "Bullying" in m["Subject"]][0]
    deliver(app, practitioner_reply(notification, "#note\n\nCalled the school."))
    clock.now = TUESDAY_OPEN
    assert send_daily_digest(app) == {"digest": 1}
    text = the_digest_text(app)
    assert ("WAITING ON THE PROFESSIONAL (1)\n- HL-000003  Bullying on Instagram  | "
            "anna@helpline.example | since Monday 2 March 2026") in text
