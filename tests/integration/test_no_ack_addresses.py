"""Programs' addresses are never acknowledged, whatever the classifier says, and the
message says why; the case still opens and reaches the practitioners."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.store.models import Message, OutboxItem
from tests.factories import deliver, mail

CASES = {
    "mailer-daemon-from": ("MAILER-DAEMON@mx.example.org", None, "no-ack:noreply"),
    "postmaster-from": ("postmaster@example.org", None, "no-ack:noreply"),
    "list-request-from": ("parents-request@lists.example.org", None, "no-ack:list-role"),
    "list-admin-from": ("parents-admin@lists.example.org", None, "no-ack:list-role"),
    "list-bounces-envelope": ("jo@school.example", "parents-bounces@lists.example.org",
                              "no-ack:envelope-noreply"),
    "list-owner-envelope": ("jo@school.example", "parents-owner@lists.example.org",
                            "no-ack:envelope-list-role"),
    "empty-envelope": ("jo@school.example", "", "no-ack:null-sender"),
    "angle-envelope": ("jo@school.example", "<>", "no-ack:null-sender"),  # as aiosmtpd gives it
    "noreply-from": ("noreply@platform.example.com", None, "no-ack:noreply"),
    "no-reply-from": ("no-reply@platform.example.com", None, "no-ack:noreply"),
    "list-bounces-from": ("parents-bounces@lists.example.org", None, "no-ack:noreply"),
    "listserv-from": ("LISTSERV@LISTSERV.UNI.EXAMPLE.EDU", None, "no-ack:list-role"),
    "mailer-daemon-envelope": ("jo@school.example", "MAILER-DAEMON@mx.example.org",
                               "no-ack:envelope-noreply"),
    "postmaster-envelope": ("jo@school.example", "postmaster@example.org",
                            "no-ack:envelope-noreply"),
    "list-request-envelope": ("jo@school.example", "parents-request@lists.example.org",
                              "no-ack:envelope-list-role"),
    "list-admin-envelope": ("jo@school.example", "parents-admin@lists.example.org",
                            "no-ack:envelope-list-role"),
    "noreply-envelope": ("jo@school.example", "no-reply@example.com", "no-ack:envelope-noreply"),
}


@pytest.mark.parametrize(("sender", "envelope", "flag"), CASES.values(), ids=CASES.keys())
def test_no_acknowledgement_to_a_programs_address(
    app: App, sender: str, envelope: str | None, flag: str
) -> None:
    outcome = deliver(app, mail(sender=sender, name="", body="A report about a fake account.\n"),
                      mail_from=envelope)
    with app.sessions() as session:
        kinds = list(session.execute(select(OutboxItem.kind)).scalars())
        [message] = session.execute(select(Message).where(Message.direction == "in")).scalars()
    assert "acknowledgement" not in kinds
    if outcome == "created":  # taken for a person's mail: the case opens, the reason is kept
        assert kinds == ["notification"] and flag in message.flags
    else:  # the classifier already knew it for a program's: no case at all
        assert outcome in ("bounce", "automatic") and kinds == []
