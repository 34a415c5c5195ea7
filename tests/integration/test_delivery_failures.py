"""Delivery failures on a case: who is told, and who gets no more mail.

A relay to a dead Cc address bounces: the assignee (or the team) is told once,
the address gets nothing more of the case until ``#retry`` or until mail comes
from it again; the requester keeps receiving answers. A delay is no failure.
"""

from __future__ import annotations

from email.message import EmailMessage
from itertools import count

from sqlalchemy import select

from mailroom.app import App
from mailroom.store.models import Event, Participant
from tests.factories import PRACTITIONERS, deliver, mail
from tests.integration.test_practitioner import (
    CASE_ID,
    TEACHER,
    open_case,
    outbox,
    plain_body,
    practitioner_reply,
)

DEAD = "old.head@school.example"
_ids = count(1)


def dsn(original: EmailMessage, failed: str, *, status: str = "5.1.1",
        action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) about ``original`` from the school's MX."""
    return (
        "From: MAILER-DAEMON@mx.school.example\r\nTo: helpline@helpline.example\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b{next(_ids)}@mx>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nmailbox unavailable\r\n'
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original['Message-ID']}\r\nSubject: x\r\n\r\n--B--\r\n"
    ).encode()


def case_with_a_copy(app: App) -> EmailMessage:
    """A case whose answers go to the teacher with the old head in Cc; the first relay."""
    notification = open_case(app, cc=[DEAD])
    deliver(app, practitioner_reply(notification, f"#allow {DEAD}\n\nWe are on it."))
    return relays(app)[-1]


def relays(app: App) -> list[EmailMessage]:
    return [m for m in outbox(app, "relay")]


def told(app: App) -> list[EmailMessage]:
    return [m for m in outbox(app, "notification") if "could not be delivered" in plain_body(m)]


def failing(app: App) -> dict[str, str | None]:
    with app.sessions() as session:
        return {p.address: (p.failing_reason and "failing")
                for p in session.execute(select(Participant)).scalars()}


def test_a_dead_copy_address_stops_receiving_and_the_team_is_told_once(app: App) -> None:
    first = case_with_a_copy(app)
    assert DEAD in first["Cc"]
    assert deliver(app, dsn(first, DEAD), mail_from="") == "bounce"
    assert failing(app) == {TEACHER: None, DEAD: "failing"}
    [notice] = told(app)
    # no assignee and no team address: every practitioner, as for a notification
    assert {a.addr_spec for a in notice["To"].addresses} == set(PRACTITIONERS)
    assert f"could not be delivered to {DEAD}" in plain_body(notice)
    assert f"#retry {DEAD}" in plain_body(notice)
    assert TEACHER not in str(notice["To"]) and DEAD not in str(notice["To"])

    assert deliver(app, dsn(first, DEAD), mail_from="") == "bounce"  # the same again
    assert len(told(app)) == 1

    notification = outbox(app, "notification")[0]
    deliver(app, practitioner_reply(notification, "A second answer."))
    second = relays(app)[-1]
    assert second["To"].addresses[0].addr_spec == TEACHER and second["Cc"] is None

    deliver(app, practitioner_reply(notification, f"#retry {DEAD}\n\nA third answer."))
    third = relays(app)[-1]
    assert DEAD in third["Cc"] and failing(app)[DEAD] is None
    with app.sessions() as session:
        actions = [e.action for e in session.execute(select(Event).order_by(Event.id)).scalars()]
    assert actions.count("participant.failing") == 1
    assert actions.count("participant.delivering") == 1


def test_mail_from_the_failing_address_lifts_the_mark(app: App) -> None:
    first = case_with_a_copy(app)
    deliver(app, dsn(first, DEAD), mail_from="")
    deliver(app, mail(sender=DEAD, name="", in_reply_to=first["Message-ID"].strip("<>"),
                      subject=f"Re: {first['Subject']}", body="I moved school, still here.\n"))
    assert failing(app)[DEAD] is None


def test_a_dead_requester_gets_nothing_and_the_team_knows(app: App) -> None:
    notification = open_case(app)
    [ack] = outbox(app, "acknowledgement")
    deliver(app, dsn(ack, TEACHER), mail_from="")
    assert failing(app) == {TEACHER: "failing"}
    [notice] = told(app)
    assert "The requester is among them" in plain_body(notice)
    deliver(app, practitioner_reply(notification, "An answer nobody can receive."))
    assert relays(app) == []


def test_a_delay_is_not_a_failure(app: App) -> None:
    first = case_with_a_copy(app)
    deliver(app, dsn(first, DEAD, status="4.2.2", action="delayed"), mail_from="")
    assert failing(app)[DEAD] is None and told(app) == []


def test_tickets_show_says_which_address_fails(app: App, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_participants_cli import cli

    first = case_with_a_copy(app)
    deliver(app, dsn(first, DEAD), mail_from="")
    assert cli(app, "tickets", "show", "HL-000001") == 0
    assert f"{DEAD} (cc, allowed, failing since" in capsys.readouterr().out
    assert CASE_ID


def test_notifications_name_the_address_that_bounces_as_sent_nothing(app: App) -> None:
    first = case_with_a_copy(app)
    deliver(app, dsn(first, DEAD), mail_from="")
    deliver(app, mail(message_id="again@school.example", subject=f"Re: {first['Subject']}",
                      in_reply_to=first["Message-ID"].strip("<>"), body="More news.\n"))
    follow_up = [m for m in outbox(app, "notification") if "More news" in plain_body(m)][-1]
    assert f"Your answer goes to: {TEACHER}\n" in plain_body(follow_up)
    assert f"Mail bounces, sent nothing: {DEAD}." in plain_body(follow_up)
