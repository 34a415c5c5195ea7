"""Outbound end to end: acknowledgements over loopback SMTP, no loops, retries."""

from __future__ import annotations

import email
import os
import smtplib
import subprocess
import sys
from datetime import timedelta
from email.policy import default

import pytest
from sqlalchemy import select, update

from mailroom.outbox.rendered import outgoing_bytes
from mailroom.pipeline import process_inbox
from mailroom.sending.sender import send_due
from mailroom.sending.transports import SmtpTransport
from mailroom.store.models import Message, OutboxItem
from tests.factories import REPO, deliver, mail, ticket_of, tickets
from tests.integration.smtp_sink import SmtpSink, smtp_sink_fixture  # noqa: F401
from tests.integration.test_smtp_door import start_door
from tests.ports import refused_port

HELPLINE = "helpline@helpline.example"


def relay_to(app, sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    app.transport_override = SmtpTransport("127.0.0.1", sink.port, security="none", timeout=5)


def to_requester(deliveries, address: str = "teacher@school.example"):  # type: ignore[no-untyped-def]
    return [d for d in deliveries if address in d.rcpt_tos]


def outbox(app, kind: str | None = None) -> list[OutboxItem]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        stmt = select(OutboxItem).order_by(OutboxItem.id)
        if kind:
            stmt = stmt.where(OutboxItem.kind == kind)
        return list(session.execute(stmt).scalars())


def test_one_acknowledgement_with_threading_headers(app, smtp_sink: SmtpSink) -> None:
    relay_to(app, smtp_sink)
    deliver(app, mail(message_id="q1@school.example", subject="Fake account"))
    assert send_due(app) == {"sent": 2}  # the acknowledgement and the practitioners' notice
    [delivery] = to_requester(smtp_sink.wait_for(2))
    ack = delivery.message
    assert delivery.rcpt_tos == ("teacher@school.example",)
    assert ack["In-Reply-To"] == "<q1@school.example>"
    assert "<q1@school.example>" in ack["References"]
    assert ack["Subject"] == "Re: [Helpline #1] Fake account"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Loop"] == HELPLINE
    assert ack["Message-ID"].endswith("@helpline.example>")
    assert ack["Reply-To"].addresses[0].addr_spec.startswith("helpline+r-t1-")
    assert "HL-000001" in ack.get_body(("plain",)).get_content()
    assert send_due(app) == {}  # nothing twice


def test_reply_to_the_acknowledgement_threads_back(app, smtp_sink: SmtpSink) -> None:
    relay_to(app, smtp_sink)
    deliver(app, mail(message_id="q1@school.example", subject="Fake account"))
    send_due(app)
    ack = to_requester(smtp_sink.wait_for(2))[0].message
    reply_to = ack["Reply-To"].addresses[0].addr_spec
    # the requester's client drops the tag and the references: the token still threads it
    plain = mail(message_id="q2@school.example", to=reply_to, subject="Re: Fake account",
                 body="Here is another link: https://instagram.com/fake\n")
    assert deliver(app, plain, rcpt_to=[reply_to]) == "threaded"
    by_headers = mail(message_id="q3@school.example", subject="Re: Fake account",
                      in_reply_to=ack["Message-ID"].strip("<>"))
    assert deliver(app, by_headers) == "threaded"
    assert {ticket_of(app, f"q{i}@school.example") for i in (1, 2, 3)} == {1}
    assert len(outbox(app, "acknowledgement")) == 1


OOO_STYLES = ["rfc3834", "threaded-no-headers", "fresh-every-time"]


def out_of_office(style: str, to_us: str, original) -> bytes:  # type: ignore[no-untyped-def]
    headers = {"Auto-Submitted": "auto-replied"} if style == "rfc3834" else {}
    keep_thread = style != "fresh-every-time"
    subject = (f"Out of Office: {original['Subject']}" if style == "rfc3834"
               else "I am away" if keep_thread else f"Away notice {os.urandom(4).hex()}")
    return mail(sender="teacher@school.example", to=to_us, subject=subject,
                body="I am out of the office until Monday.\n", headers=headers,
                in_reply_to=original["Message-ID"].strip("<>") if keep_thread else None)


@pytest.mark.parametrize("style", OOO_STYLES, ids=OOO_STYLES)
def test_autoresponder_peer_exchange_is_bounded(app, smtp_sink: SmtpSink, style: str) -> None:
    """The teacher's server answers every mail from us with an out-of-office reply."""
    relay_to(app, smtp_sink)
    door = start_door(app)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.sendmail("teacher@school.example", [HELPLINE], mail(message_id="o@s.example"))
        exchanged = 1
        for _round in range(20):
            process_inbox(app)
            send_due(app)
            new = smtp_sink.deliveries
            smtp_sink.clear()
            to_teacher = [d for d in new if "teacher@school.example" in d.rcpt_tos]
            if not to_teacher:
                break
            for delivery in to_teacher:
                reply = out_of_office(style, HELPLINE, delivery.message)
                with smtplib.SMTP("127.0.0.1", door.port) as client:
                    client.sendmail("teacher@school.example", [HELPLINE], reply)
                exchanged += 2
        else:
            pytest.fail("mail kept flowing between mailroom and the autoresponder")
    finally:
        door.stop()
    assert exchanged <= 3, exchanged
    assert len(outbox(app, "acknowledgement")) == 1


def test_relay_refusing_then_failed_and_notice(app, smtp_sink: SmtpSink) -> None:
    deliver(app, mail(message_id="r1@school.example"))  # acknowledgement + notification
    clock, teacher = app.clock, ["teacher@school.example"]
    with refused_port() as port:
        app.transport_override = SmtpTransport("127.0.0.1", port, security="none", timeout=3)
        assert send_due(app) == {"retry": 2}  # connection refused
    [ack] = outbox(app, "acknowledgement")
    assert ack.status == "queued" and ack.attempts == 1 and "connect" in ack.last_error
    assert send_due(app) == {}  # backoff: not due yet
    relay_to(app, smtp_sink)
    smtp_sink.refuse(451, at="rcpt", recipients=teacher)
    clock.advance(seconds=61)
    assert send_due(app) == {"retry": 1, "sent": 1}  # the practitioners' notification went
    ack = outbox(app, "acknowledgement")[0]
    assert ack.attempts == 2 and ack.send_after == clock() + timedelta(seconds=120)
    smtp_sink.accept()
    smtp_sink.refuse(550, at="rcpt", recipients=teacher)
    clock.advance(seconds=121)
    assert send_due(app) == {"failed": 1, "sent": 1}  # the acknowledgement, then the notice
    assert outbox(app, "acknowledgement")[0].status == "failed"
    [notice] = outbox(app, "outbox_failed")
    assert notice.status == "sent" and notice.rcpt_to == list(app.settings.practitioners)
    body = smtp_sink.deliveries[-1].message.get_body(("plain",)).get_content()
    assert "550" in body and "HL-000001" in body and "teacher@school.example" in body
    assert send_due(app) == {}


# Five senders writing the same mail would trip the acknowledgement circuit breaker.
UNLIMITED_SAME_CONTENT = {"same_content_per_window": 1000}


def test_relay_down_for_a_while_delivers_each_message_once(make_app, smtp_sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    app = make_app(acknowledgements=UNLIMITED_SAME_CONTENT)
    for i in range(5):
        deliver(app, mail(sender=f"t{i}@school.example", message_id=f"d{i}@school.example"))
    relay_to(app, smtp_sink)
    smtp_sink.refuse(421)
    for _ in range(4):
        send_due(app)
        app.clock.advance(minutes=30)
    smtp_sink.accept()
    send_due(app)
    app.clock.advance(hours=1)
    send_due(app)
    ids = [d.message["Message-ID"] for d in smtp_sink.deliveries]
    assert len(ids) == len(set(ids)) == len(outbox(app)) == 10
    assert {o.status for o in outbox(app)} == {"sent"}


def test_hostile_subject_and_display_name_render_safely(app, smtp_sink: SmtpSink) -> None:
    relay_to(app, smtp_sink)
    raw = (b"From: \"Smith, \\\"Jo\\\" <x@evil.example>\" <jo@school.example>\r\n"
           b"To: helpline@helpline.example\r\nMessage-ID: <h1@school.example>\r\n"
           b"Subject: =?utf-8?q?Help=0D=0ABcc=3A_victim=40evil.example?=\r\n\r\nhello\r\n")
    deliver(app, raw)
    send_due(app)
    ack_raw = to_requester(smtp_sink.wait_for(2), "jo@school.example")[0].data
    ack = email.message_from_bytes(ack_raw, policy=default)
    assert ack["Bcc"] is None and b"\r\nBcc:" not in ack_raw and b"\nBcc:" not in ack_raw
    assert "\n" not in str(ack["Subject"]) and "victim@evil.example" in str(ack["Subject"])
    [to] = ack["To"].addresses
    assert to.addr_spec == "jo@school.example"
    assert to_requester(smtp_sink.deliveries, "jo@school.example")[0].rcpt_tos == (
        "jo@school.example",)


def test_two_tick_processes_send_each_message_once(make_pg_app, smtp_sink, tmp_path):  # type: ignore[no-untyped-def]
    app = make_pg_app(outbound={"url": f"smtp://127.0.0.1:{smtp_sink.port}"},
                      acknowledgements=UNLIMITED_SAME_CONTENT)
    for i in range(30):
        deliver(app, mail(sender=f"p{i}@school.example", message_id=f"p{i}@school.example"))
    env = {**os.environ, "MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    command = [sys.executable, "-m", "mailroom", "tick", "--json"]
    procs = [subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    ids = [d.message["Message-ID"] for d in smtp_sink.deliveries]
    # each case's acknowledgement and notification, and (the cases were opened in March, the
    # ticks run at the real time) the notice that its first answer is overdue: once each,
    # though both processes ran the SLA job
    assert len(ids) == 90 and len(set(ids)) == 90
    assert {o.status for o in outbox(app)} == {"sent"}
    breaches = [o.ticket_id for o in outbox(app) if o.kind == "sla_breach"]
    assert len(breaches) == len(set(breaches)) == 30


def test_no_acknowledgement_to_noreply_or_null_sender(app) -> None:
    assert deliver(app, mail(sender="no-reply@platform.example", message_id="n1@x.example")) \
        == "created"
    # a null envelope sender (MAIL FROM:<>) is automatic mail: kept, never answered
    assert deliver(app, mail(sender="someone@school.example", message_id="n2@x.example"),
                   door="smtp", mail_from="") == "automatic"
    assert len(tickets(app)) == 1 and outbox(app, "acknowledgement") == []


def test_acknowledgements_are_rate_limited_per_sender(make_app) -> None:
    app = make_app(acknowledgements={"per_window": 1, "window_minutes": 10, "per_day": 3})
    for i in range(8):
        deliver(app, mail(message_id=f"rl{i}@school.example", subject=f"case {i}"))
        app.clock.advance(minutes=4)
    # one every 4 minutes for 32 minutes, at most one per 10 minutes: 3 go
    assert len(outbox(app, "acknowledgement")) == 3
    window = ["no-ack:rate-window"]
    assert inbound_flags(app) == [[], window, window, [], window, window, [], window]


def test_the_daily_acknowledgement_cap_holds_outside_the_window(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(acknowledgements={"per_window": 1, "window_minutes": 10, "per_day": 3})
    for i in range(5):
        deliver(app, mail(message_id=f"day{i}@school.example", subject=f"case {i}"))
        app.clock.advance(minutes=11)
    assert len(outbox(app, "acknowledgement")) == 3
    assert inbound_flags(app) == [[], [], [], ["no-ack:rate-day"], ["no-ack:rate-day"]]


def inbound_flags(app) -> list[list[str]]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return [m.flags for m in session.execute(select(Message).where(
            Message.direction == "in").order_by(Message.id)).scalars()]


def _with_screenshot(raw: bytes, data: bytes) -> bytes:
    msg = email.message_from_bytes(raw, policy=default)
    msg.add_attachment(data, maintype="image", subtype="png", filename="shot.png")  # type: ignore[attr-defined]
    return msg.as_bytes()


def test_files_are_attached_from_the_store_when_sent(app, smtp_sink: SmtpSink) -> None:
    relay_to(app, smtp_sink)
    screenshot = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    deliver(app, _with_screenshot(mail(message_id="f1@school.example"), screenshot))
    [notice] = outbox(app, "notification")
    assert notice.files and notice.files[0]["filename"] == "shot.png"
    queued = outgoing_bytes(notice) or b""
    assert screenshot not in queued and len(queued) < 5000  # text only
    send_due(app)
    [delivery] = [d for d in smtp_sink.wait_for(2) if "teacher@school.example" not in d.rcpt_tos]
    [part] = delivery.message.iter_attachments()
    assert part.get_filename() == "shot.png" and part.get_content() == screenshot
    assert delivery.message.get_body(("plain",)) is not None
    assert delivery.message["Message-ID"] == f"<{notice.message_id}>"


def test_files_stay_behind_when_the_case_turns_illegal_before_sending(
    app, smtp_sink: SmtpSink
) -> None:
    from mailroom.store.models import Ticket

    relay_to(app, smtp_sink)
    deliver(app, _with_screenshot(mail(message_id="f2@school.example"), b"\x89PNG secret"))
    with app.sessions.begin() as session:
        session.get(Ticket, 1).category = "illegal_images"
    send_due(app)
    deliveries = smtp_sink.wait_for(2)
    assert len(deliveries) == 2
    assert all(list(d.message.iter_attachments()) == [] for d in deliveries)
    assert all(b"secret" not in d.message.as_bytes() for d in deliveries)
    [notice] = [d for d in deliveries if "teacher@school.example" not in d.rcpt_tos]
    text = notice.message.get_body(("plain",)).get_content()
    assert "shot.png" in text  # listed when it was queued ...
    assert "the attachment listed above was not sent" in text  # ... and why it is not there
    assert "possibly holding illegal images" in text


def test_a_file_gone_from_the_store_does_not_stop_the_mail(app, smtp_sink: SmtpSink) -> None:
    relay_to(app, smtp_sink)
    deliver(app, _with_screenshot(mail(message_id="f3@school.example"), b"\x89PNG gone"))
    [notice] = outbox(app, "notification")
    app.blobs.delete(notice.files[0]["sha256"])
    assert send_due(app) == {"sent": 2}
    [delivery] = [d for d in smtp_sink.wait_for(2) if "teacher@school.example" not in d.rcpt_tos]
    assert list(delivery.message.iter_attachments()) == []
    text = delivery.message.get_body(("plain",)).get_content()
    assert "the attachment listed above could not be sent" in text


def test_a_row_that_cannot_be_composed_fails_and_the_rest_go(app, smtp_sink) -> None:  # type: ignore[no-untyped-def]
    relay_to(app, smtp_sink)
    deliver(app, mail(message_id="c1@school.example"))
    [ack] = outbox(app, "acknowledgement")
    broken = dict(ack.rendered or {}, to=[["no address", ""]])
    with app.sessions.begin() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == ack.id)
                        .values(rendered=broken))
    assert send_due(app) == {"failed": 1, "sent": 2}  # the notification and the failure notice
    failed = outbox(app, "acknowledgement")[0]
    assert failed.status == "failed" and "cannot be composed" in (failed.last_error or "")
    assert send_due(app) == {}


def test_queueing_refuses_an_address_no_header_can_carry(app) -> None:  # type: ignore[no-untyped-def]
    from mailroom.mailtypes import Address
    from mailroom.outbox.queue import Draft, queue_mail

    context = {"reference": None, "kind": "relay", "recipients": [], "subject": "x",
               "message_id": "m@x", "attempts": 1, "error": ""}
    draft = Draft(kind="outbox_failed", template="practitioner/outbox_failed", context=context,
                  to=(Address("jö@münchen.example"),), subject="x")
    with app.sessions.begin() as session, pytest.raises(ValueError, match="SMTPUTF8"):
        queue_mail(app.settings, app.renderer, session, draft, now=app.now())
