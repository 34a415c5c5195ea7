"""Mail loops with autoresponders that wear no automatic-reply headers, end to end.

Everything goes through the real SMTP door (``SmtpDoor(port=0)`` and smtplib)
and the pipeline, on SQLite and PostgreSQL; what people received is read back
from the file transport's ``.eml`` files (envelope in ``X-Mailroom-Rcpt-To``).

The attack replayed: an autoresponder answers every acknowledgement from a new
address, without ``Auto-Submitted`` or any other automatic-reply header and
without ``In-Reply-To``/``References``, quoting the acknowledgement. Each answer
is a stranger quoting a case tag, so it opens a new case; before the circuit
breaker it went on for 50 rounds (51 cases, 51 acknowledgements, one more tag
in the subject each round).
"""

from __future__ import annotations

import email
import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.doors.smtp import SmtpDoor
from mailroom.pipeline import process_inbox
from mailroom.sending.sender import send_due
from mailroom.store.models import Message
from tests.factories import PRACTITIONERS, mail, tickets
from tests.integration.test_smtp_door import start_door

HELPLINE = "helpline@helpline.example"
RESPONDER = "responder.example"
ROUNDS = 50
ANY_TAG = re.compile(r"\[Helpline #\d+\]", re.IGNORECASE)
AUTORESPONDER_TEXT = (
    "Thank you for contacting Example Support. Your request has been received and will be "
    "handled by the next available agent.\n"
)


@dataclass(frozen=True)
class Sent:
    """One mail as the file transport wrote it."""

    path: Path
    rcpt_to: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to_responder(self) -> bool:
        return any(r.endswith("@" + RESPONDER) for r in self.rcpt_to)

    @property
    def to_practitioners(self) -> bool:
        return set(self.rcpt_to) == set(PRACTITIONERS)


def sent_mail(app: App, seen: frozenset[Path] = frozenset()) -> list[Sent]:
    """Every mail the file transport wrote, except the files in ``seen``."""
    return [read_sent(path) for path in sorted(app.settings.sent_dir.glob("*.eml"))
            if path not in seen]


def read_sent(path: Path) -> Sent:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    rcpt = tuple(r.strip() for r in str(message["X-Mailroom-Rcpt-To"]).split(","))
    return Sent(path, rcpt, message)


@pytest.fixture
def door(app: App) -> Iterator[SmtpDoor]:
    door = start_door(app)
    yield door
    door.stop()


def send(door: SmtpDoor, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        assert client.sendmail(sender, [HELPLINE], raw) == {}


def autoresponder_answer(acknowledgement: Sent, sender: str) -> bytes:
    """What the autoresponder sends back: no automatic headers, no thread headers."""
    quoted = "".join(f"> {line}\n" for line in
                     acknowledgement.message.get_body(("plain",)).get_content().splitlines())
    return mail(sender=sender, name="Example Support", subject=f"Re: {acknowledgement.subject}",
                body=f"{AUTORESPONDER_TEXT}\n{quoted}")


def replay_loop(app: App, door: SmtpDoor, first: bytes) -> int:
    """Send ``first``, then answer every acknowledgement to the responder from a new
    address, until none comes or ``ROUNDS`` have passed; return the answers sent."""
    send(door, f"auto0@{RESPONDER}", first)
    seen: set[Path] = set()
    answers = 0
    for _ in range(ROUNDS):
        process_inbox(app)
        send_due(app)
        new = sent_mail(app, frozenset(seen))
        seen.update(s.path for s in new)
        to_answer = [s for s in new if s.to_responder]
        if not to_answer:
            break
        for acknowledgement in to_answer:
            answers += 1
            send(door, f"auto{answers}@{RESPONDER}",
                 autoresponder_answer(acknowledgement, f"auto{answers}@{RESPONDER}"))
    process_inbox(app)
    send_due(app)
    return answers


def inbound_flags(app: App) -> list[list[str]]:
    with app.sessions() as session:
        return [m.flags for m in session.execute(select(Message).where(
            Message.direction == "in").order_by(Message.id)).scalars()]


@pytest.mark.parametrize("limit", [3, 12], ids=["default-3", "twelve"])
def test_an_autoresponder_changing_address_is_stopped_by_the_circuit_breaker(
    make_app, limit: int,  # type: ignore[no-untyped-def]
) -> None:
    app = make_app() if limit == 3 else make_app(
        acknowledgements={"same_content_per_window": limit})
    answers = run_attack(app)
    sent = sent_mail(app)
    acknowledgements = [s for s in sent if s.to_responder]
    assert len(acknowledgements) == limit  # then the loop stopped
    assert answers == limit
    assert len(tickets(app)) == limit + 1  # every answer still opened its case …
    assert len([s for s in sent if s.to_practitioners]) == limit + 1  # … and was notified
    flags = inbound_flags(app)
    assert "no-ack:circuit-breaker" in flags[-1] and f"quoted-ticket:{limit}" in flags[-1]
    assert not any("no-ack:circuit-breaker" in f for f in flags[:-1])
    assert_one_tag_per_subject(app, sent)


def test_without_the_breaker_the_loop_runs_all_rounds_with_one_tag_each(make_app) -> None:  # type: ignore[no-untyped-def]
    """The attack as it was (the per-sender limits never apply: every round is a new
    sender); subjects no longer grow by a tag per round."""
    app = make_app(acknowledgements={"same_content_per_window": 1000})
    assert run_attack(app) == ROUNDS
    sent = sent_mail(app)
    assert len([s for s in sent if s.to_responder]) == ROUNDS + 1
    assert_one_tag_per_subject(app, sent)


def run_attack(app: App) -> int:
    door = start_door(app)
    try:
        return replay_loop(app, door, mail(sender=f"auto0@{RESPONDER}", subject="Fake account",
                                           body=AUTORESPONDER_TEXT))
    finally:
        door.stop()


def assert_one_tag_per_subject(app: App, sent: list[Sent]) -> None:
    """Every subject sent carries exactly one tag and at most one "Re:"; every case
    opened by an answer keeps its subject without our tags."""
    for mail_sent in sent:
        assert len(ANY_TAG.findall(mail_sent.subject)) == 1, mail_sent.subject
        assert "Re: Re:" not in mail_sent.subject and "Fake account" in mail_sent.subject
    assert {t.subject for t in tickets(app)} == {"Fake account", "Re: Fake account"}


def test_the_breaker_lets_the_same_content_through_once_the_window_has_passed(
    app: App, door: SmtpDoor,
) -> None:
    replay_loop(app, door, mail(sender=f"auto0@{RESPONDER}", subject="Fake account",
                                body=AUTORESPONDER_TEXT))
    assert len([s for s in sent_mail(app) if s.to_responder]) == 3
    for minutes, sender in ((59, "later@responder.example"), (2, "after@responder.example")):
        app.clock.advance(minutes=minutes)  # type: ignore[attr-defined]
        send(door, sender, mail(sender=sender, subject="Re: Fake account",
                                body=AUTORESPONDER_TEXT))
        process_inbox(app)
    send_due(app)
    got = {r for s in sent_mail(app) for r in s.rcpt_to}
    assert "later@responder.example" not in got  # 59 minutes: still the same window
    assert "after@responder.example" in got  # 61 minutes after the first acknowledgement
    assert inbound_flags(app)[-2] == ["no-ack:circuit-breaker"]


def test_teachers_of_one_school_writing_the_same_subject(app: App, door: SmtpDoor) -> None:
    """Honest traffic: three are acknowledged, the fourth only opens its case."""
    bodies = [
        "Someone made a fake account of our head teacher on Instagram.",
        "A pupil told me there is a fake account with my photo on it.",
        "Parents forwarded me a fake account pretending to be the school.",
        "There is now a fake account of the deputy head as well.",
    ]
    for number, body in enumerate(bodies, start=1):
        sender = f"teacher{number}@school.example"
        send(door, sender, mail(sender=sender, subject="Fake account", body=body))
    process_inbox(app)
    send_due(app)
    sent = sent_mail(app)
    acknowledged = {r for s in sent for r in s.rcpt_to if r.startswith("teacher")}
    assert acknowledged == {"teacher1@school.example", "teacher2@school.example",
                            "teacher3@school.example"}
    assert len([s for s in sent if s.to_practitioners]) == 4
    assert len(tickets(app)) == 4
    assert inbound_flags(app)[-1] == ["no-ack:circuit-breaker"]


def test_the_same_text_under_new_subjects_trips_the_breaker_too(app: App, door: SmtpDoor) -> None:
    for number, subject in enumerate(["Ticket received", "Your request", "Case opened",
                                      "Automated notice"], start=1):
        sender = f"bot{number}@responder.example"
        send(door, sender, mail(sender=sender, subject=subject, body=AUTORESPONDER_TEXT))
    process_inbox(app)
    send_due(app)
    assert len([s for s in sent_mail(app) if s.to_responder]) == 3
    assert inbound_flags(app)[-1] == ["no-ack:circuit-breaker"]


def test_vacation_text_without_headers_opens_a_case_without_acknowledgement(
    app: App, door: SmtpDoor,
) -> None:
    """A practitioner's-style absence notice from a requester: no acknowledgement, but
    the case opens and the practitioners see it (a real report is never dropped)."""
    notice = ("Thank you for your email. I am out of the office until Monday 9 March with "
              "limited access to email. For urgent matters please call the school office on "
              "01234 567890.\n\nKind regards\nJo Teacher\n")
    send(door, "teacher@school.example", mail(subject="Re: [Helpline #40] Your case",
                                              body=notice))
    process_inbox(app)
    send_due(app)
    sent = sent_mail(app)
    assert not [s for s in sent if "teacher@school.example" in s.rcpt_to]
    [notification] = [s for s in sent if s.to_practitioners]
    assert notification.subject == "Re: [Helpline #1] Your case"
    assert "out of the office until Monday" in notification.message.get_body(
        ("plain",)).get_content()
    assert len(tickets(app)) == 1
    assert [sorted(f) for f in inbound_flags(app)] == [["no-ack:vacation-text",
                                                        "quoted-ticket:40"]]


def test_a_report_that_mentions_leave_is_acknowledged(app: App, door: SmtpDoor) -> None:
    report = ("I'm on leave next week but our pupil is being bullied: "
              "https://www.instagram.com/fake.account\n")
    send(door, "teacher@school.example", mail(subject="Bullying", body=report))
    process_inbox(app)
    send_due(app)
    assert [s for s in sent_mail(app) if "teacher@school.example" in s.rcpt_to]
    assert inbound_flags(app) == [[]]
