"""The SMTP door over loopback with real clients (smtplib, swaks, a raw socket)."""

from __future__ import annotations

import shutil
import smtplib
import socket
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.inbox import store_raw
from mailroom.pipeline import process_inbox
from tests.factories import inbox_rows, mail, tickets
from tests.tcp_proxy import TcpProxy

HELPLINE = "helpline@helpline.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_door(app, max_size: int = 1_000_000) -> SmtpDoor:  # type: ignore[no-untyped-def]
    def accept(raw: bytes, mail_from: str | None, rcpt_to: list[str]) -> None:
        store_raw(app.door_sessions, raw, door="smtp", mail_from=mail_from, rcpt_to=rcpt_to)

    handler = HelplineHandler(accept, app.settings.domains)
    door = SmtpDoor(handler, host="127.0.0.1", port=0, max_size=max_size,
                    hostname="helpline.example")
    door.start()
    return door


@pytest.fixture
def door(app) -> Iterator[SmtpDoor]:  # type: ignore[no-untyped-def]
    door = start_door(app)
    yield door
    door.stop()


def test_mail_is_stored_exactly_as_sent_then_processed(app, door: SmtpDoor) -> None:
    raw = mail(message_id="smtp1@school.example")
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        refused = client.sendmail("teacher@school.example", [HELPLINE], raw)
    assert refused == {}
    [row] = inbox_rows(app)
    assert row.door == "smtp" and row.mail_from == "teacher@school.example"
    assert row.rcpt_to == [HELPLINE]
    # smtplib ends the DATA with CRLF; the bytes stored are the bytes transmitted
    assert row.raw.replace(b"\r\n", b"\n").rstrip() == raw.replace(b"\r\n", b"\n").rstrip()
    assert process_inbox(app) == {"created": 1}
    assert len(tickets(app)) == 1


def test_relay_attempt_is_refused_with_550(door: SmtpDoor) -> None:
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        client.ehlo()
        client.mail("spammer@bad.example")
        code, text = client.rcpt("victim@elsewhere.example")
    assert code == 550 and b"5.1.1" in text


def test_mixed_recipients_deliver_only_ours(app, door: SmtpDoor) -> None:
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        refused = client.sendmail("t@school.example", [HELPLINE, "x@elsewhere.example"],
                                  mail(message_id="mixed@school.example"))
    assert list(refused) == ["x@elsewhere.example"]
    assert inbox_rows(app)[0].rcpt_to == [HELPLINE]


def test_oversize_message_is_refused_with_552(app) -> None:
    door = start_door(app, max_size=20_000)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.ehlo()
            assert client.has_extn("size") and client.esmtp_features["size"] == "20000"
            big = mail(message_id="big@school.example", body=("y" * 70 + "\n") * 600)
            with pytest.raises(smtplib.SMTPSenderRefused) as info:  # SIZE= in MAIL FROM
                client.sendmail("t@school.example", [HELPLINE], big)
            assert info.value.smtp_code == 552
            client.ehlo()
            client.esmtp_features.pop("size")  # a client that does not announce the size
            with pytest.raises(smtplib.SMTPDataError) as data_info:
                client.sendmail("t@school.example", [HELPLINE], big)
            assert data_info.value.smtp_code == 552
    finally:
        door.stop()
    assert inbox_rows(app) == []


def test_conversation_byte_for_byte(door: SmtpDoor) -> None:
    with socket.create_connection(("127.0.0.1", door.port), timeout=5) as sock:
        stream = sock.makefile("rwb")

        def say(line: str) -> str:
            stream.write(line.encode() + b"\r\n")
            stream.flush()
            return read_reply(stream)

        assert read_reply(stream).startswith("220 ")
        assert say("HELO client.example").startswith("250 ")
        assert say("MAIL FROM:<t@school.example>") == "250 OK"
        assert say("RCPT TO:<nobody@elsewhere.example>") == (
            "550 5.1.1 Recipient address rejected: not a helpline address (relay denied)")
        assert say(f"RCPT TO:<{HELPLINE}>") == "250 2.1.5 Recipient OK"
        assert say("DATA").startswith("354")
        assert say("Subject: hi\r\nMessage-ID: <bb@x.example>\r\n\r\nhello\r\n.") == (
            "250 2.0.0 Message accepted for delivery")
        assert say("QUIT").startswith("221")


def read_reply(stream) -> str:  # type: ignore[no-untyped-def]
    lines = []
    while True:
        line = stream.readline().decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_delivers(app, door: SmtpDoor) -> None:
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{door.port}", "--from", "t@school.example",
         "--to", HELPLINE, "--header", "Subject: via swaks", "--body", "hello from swaks"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(inbox_rows(app)) == 1


def test_database_down_gives_451_and_nothing_is_lost(make_pg_app, pg_url: str) -> None:
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        app = make_pg_app(database={"url": proxied})
        door = start_door(app)
        try:
            proxy.down()
            raw = mail(message_id="during-outage@school.example")
            with smtplib.SMTP("127.0.0.1", door.port, timeout=30) as client, \
                    pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("t@school.example", [HELPLINE], raw)
            assert info.value.smtp_code == 451
            proxy.up()
            with smtplib.SMTP("127.0.0.1", door.port, timeout=30) as client:
                assert client.sendmail("t@school.example", [HELPLINE], raw) == {}
        finally:
            door.stop()
        assert [r.dedup_key for r in inbox_rows(app)] == ["mid:during-outage@school.example"]
