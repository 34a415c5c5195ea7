"""Automatic mail from the wild, through the whole pipeline: a recognised bounce
is recorded against the acknowledgement it bounces with its failed recipients
(the event ``bounce.received``), and nothing answers any of it; a person who
writes about a failed delivery opens a case and is acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.store.models import Event, Message, OutboxItem
from tests.factories import deliver, mail, tickets

WILD = Path(__file__).resolve().parents[1] / "fixtures" / "classify" / "wild"
SENDER = "sam.parent@example.net"


def acknowledged(app: App) -> str:
    """A requester's new case; the Message-ID of its acknowledgement."""
    assert deliver(app, mail(sender=SENDER, name="Sam Parent")) == "created"
    with app.sessions() as session:
        return session.execute(select(OutboxItem.message_id).where(
            OutboxItem.kind == "acknowledgement", OutboxItem.to_addr == SENDER)).scalar_one()


def fixture(name: str, original: str, ack_id: str, recipient: str) -> bytes:
    """A wild fixture about our acknowledgement: its Message-ID and its recipient put in
    (both ASCII, so the bytes of ISO-2022-JP text stay valid)."""
    raw = (WILD / name).read_bytes()
    return raw.replace(original.encode(), ack_id.encode()).replace(
        recipient.encode(), SENDER.encode())


def outbox_kinds(app: App) -> list[str]:
    with app.sessions() as session:
        return sorted(session.execute(select(OutboxItem.kind)).scalars())


def outbox_rows(app: App) -> list[tuple[str, str]]:
    with app.sessions() as session:
        return [(kind, to) for kind, to in session.execute(
            select(OutboxItem.kind, OutboxItem.to_addr))]


@pytest.mark.parametrize(
    ("name", "original", "recipient", "others"),
    [
        ("service/ses-bounce-sns-email.eml", "mailroom.t51.1@helpline.example.org", SENDER,
         ["jo.carer@example.net"]),
        ("service/ses-complaint-sns-email.eml", "mailroom.t53.1@helpline.example.org",
         "alex@example.com", []),
        ("bounce-i18n/ja-iso2022jp-postmaster.eml", "mailroom.t41.1@helpline.example.org",
         "hanako.s@mail.example.ne.jp", []),
        ("bounce-text/exim-no-x-failed.eml", "mailroom.t31.1@helpline.example.org",
         "jo.parent@mail.example.net", []),
    ],
    ids=["ses-bounce", "ses-complaint", "japanese-carrier", "exim-text"],
)
def test_a_bounce_is_recorded_against_what_it_bounces_with_its_recipients(
    app: App, name: str, original: str, recipient: str, others: list[str]
) -> None:
    ack_id = acknowledged(app)
    before = outbox_rows(app)
    outcome = deliver(app, fixture(name, original, ack_id, recipient), mail_from="")
    assert outcome == "bounce" and len(tickets(app)) == 1
    new = [row for row in outbox_rows(app) if row not in before]
    # Nothing answers the bounce, nothing more goes to the failed address; the
    # practitioners may be told of the failure.
    assert all(kind == "notification" and to != SENDER for kind, to in new), new
    with app.sessions() as session:
        ack = session.execute(select(Message).where(Message.message_id == ack_id)).scalar_one()
        event = session.execute(select(Event).where(Event.action == "bounce.received")).scalar_one()
    assert "bounced" in ack.flags
    assert event.detail["recipients"] == [SENDER, *others]
    assert event.detail["original"] == ack_id


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("list-manager/listserv-not-distributed.eml", "bounce"),
        ("list-manager/mailman2-held-no-list-headers.eml", "automatic"),
        ("list-manager/majordomo-non-member.eml", "automatic"),
        ("service/ses-delivery-notification.eml", "automatic"),
        ("bounce-i18n/ja-shiftjis-undeclared.eml", "bounce"),
    ],
    ids=["listserv-rejected", "mailman-held", "majordomo-results", "ses-delivery",
         "shift-jis-bounce"],
)
def test_notices_open_no_case_and_get_no_answer(app: App, name: str, outcome: str) -> None:
    """Delivered by SMTP from an ordinary envelope: the notice itself says what it is."""
    assert deliver(app, (WILD / name).read_bytes(), door="smtp",
                   mail_from="relay@example.net") == outcome
    assert tickets(app) == [] and outbox_kinds(app) == []


def test_a_person_writing_about_a_failed_delivery_is_answered(app: App) -> None:
    raw = (WILD / "human" / "mail-delivery-failed-subject.eml").read_bytes()
    assert deliver(app, raw, door="smtp", mail_from="sam.parent@example.net") == "created"
    assert "acknowledgement" in outbox_kinds(app)
