"""Nobody can block intake or make a report vanish.

Attacks: a message of 20,000 tiny attachments (it used to hold the database
for minutes, every other delivery getting 451); a second, different message
reusing a stored Message-ID (it used to get 250 and disappear); more
recipients and connections than any mail server needs.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailroom.store.models import InboxItem
from tests.factories import mail
from tests.security.helpline import ANNA, HELPLINE, Helpline

TEACHER = "teacher@school.example"
WORRIES = [("a fake account of our head", "https://www.tiktok.com/@fakehead"),
           ("comments about a teacher", "https://www.facebook.com/groups/parents"),
           ("a pupil being bullied", "https://www.instagram.com/p/abc"),
           ("a video filmed in class", "https://www.youtube.com/watch?v=abc"),
           ("threats against our staff", "https://x.com/someone/status/1")]


def hostile_message(parts: int = 20_000) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = "flood@evil.example", HELPLINE
    message["Subject"], message["Message-ID"] = "Attachments", "<flood@evil.example>"
    message.set_content("Many files.\n")
    for number in range(parts):
        message.add_attachment(b"x", maintype="application", subtype="octet-stream",
                               filename=f"{number}.bin")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def test_a_message_of_many_parts_blocks_nobody(helpline: Helpline) -> None:
    helpline.send(hostile_message(), mail_from="flood@evil.example")
    for number, (what, where) in enumerate(WORRIES):
        helpline.send(mail(sender=f"teacher{number}@school.example", subject=what.capitalize(),
                           body=f"We need help with {what}: {where}\n"),
                      mail_from=f"teacher{number}@school.example")
    helpline.settle()
    with helpline.app.sessions() as session:
        rows = {row.mail_from: row for row in session.execute(select(InboxItem)).scalars()}
    flood = rows.pop("flood@evil.example")
    assert flood.status == "bad" and "too many MIME parts" in (flood.error or "")
    assert {row.status for row in rows.values()} == {"done"}
    for number in range(5):
        assert helpline.received(f"teacher{number}@school.example")  # acknowledged
    assert helpline.received("flood@evil.example") == []


def test_a_reused_message_id_does_not_make_a_report_vanish(helpline: Helpline) -> None:
    helpline.write(sender=TEACHER, message_id="report@school.example", subject="First",
                   body="A fake account of our head: https://www.tiktok.com/@x1\n")
    helpline.write(sender="deputy@other.example", message_id="report@school.example",
                   subject="Our own report", body="Someone is posting about our pupils.\n")
    assert [t.requester for t in helpline.tickets()] == [TEACHER, "deputy@other.example"]
    assert helpline.received("deputy@other.example")  # their acknowledgement
    notice = helpline.last_for(ANNA, lambda s: "posting about our pupils" in s.text)
    assert "First" not in notice.subject


def test_too_many_recipients_and_connections_are_refused(helpline: Helpline) -> None:
    limit = helpline.app.settings.smtp_max_recipients
    with smtplib.SMTP("127.0.0.1", helpline.port, timeout=60) as client:
        client.ehlo("client.example")
        assert "Python" not in client.ehlo_resp.decode() if client.ehlo_resp else True
        client.mail(TEACHER)
        codes = [client.rcpt(f"helpline+{n}@helpline.example")[0] for n in range(limit + 1)]
    assert codes[:limit] == [250] * limit and codes[limit] == 452
    per_client = helpline.app.settings.smtp_max_connections_per_client
    clients = [smtplib.SMTP("127.0.0.1", helpline.port, timeout=60) for _ in range(per_client)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", helpline.port, timeout=60)
        assert refused.value.smtp_code == 421
    finally:
        for client in clients:
            client.close()
