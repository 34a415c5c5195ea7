"""The SMTP door over loopback with real clients (smtplib, swaks, a raw socket)."""

from __future__ import annotations

import shutil
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from aiosmtpd import __version__ as aiosmtpd_version
from sqlalchemy.engine import make_url

from mailroom.app import system_clock
from mailroom.doors.contract import StoreInbox
from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.pipeline import process_inbox
from mailroom.runtime.daemon import Daemon
from tests.factories import inbox_rows, mail, tickets
from tests.tcp_proxy import TcpProxy

HELPLINE = "helpline@helpline.example"


def start_door(app, max_size: int = 1_000_000, *, max_recipients: int = 50,  # type: ignore[no-untyped-def]
               max_connections_per_client: int = 10, idle_timeout: float = 60.0) -> SmtpDoor:
    handler = HelplineHandler(StoreInbox(app.door_sessions), app.settings.domains,
                              max_recipients=max_recipients)
    door = SmtpDoor(handler, host="127.0.0.1", port=0, max_size=max_size,
                    hostname="helpline.example",
                    max_connections_per_client=max_connections_per_client,
                    idle_timeout=idle_timeout)
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


# --------------------------------------------------------------------------- abuse limits


def greeting_of(sock: socket.socket) -> str:
    return read_reply(sock.makefile("rb"))


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes the connection (EOF); the socket's own timeout
    bounds the wait."""
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return False
    return True


def test_the_recipient_past_the_limit_gets_452_and_the_rest_are_delivered(app) -> None:  # type: ignore[no-untyped-def]
    door = start_door(app)  # max_recipients: 50, the default
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.ehlo()
            client.mail("t@school.example")
            replies = [client.rcpt(f"helpline+{i}@helpline.example") for i in range(51)]
            assert {code for code, _ in replies[:50]} == {250}
            assert replies[50] == (452, b"4.5.3 Too many recipients")
            assert client.data(mail(message_id="many-rcpt@school.example"))[0] == 250
            client.mail("t@school.example")  # a new transaction counts afresh
            assert client.rcpt(HELPLINE)[0] == 250
    finally:
        door.stop()
    [row] = inbox_rows(app)
    assert len(row.rcpt_to) == 50 and "helpline+50@helpline.example" not in row.rcpt_to


def test_a_client_past_its_connection_limit_gets_421_and_is_closed(app) -> None:  # type: ignore[no-untyped-def]
    door = start_door(app)  # max_connections_per_client: 10, the default
    held = [socket.create_connection(("127.0.0.1", door.port), timeout=10) for _ in range(10)]
    try:
        assert all(greeting_of(sock).startswith("220 ") for sock in held)
        with socket.create_connection(("127.0.0.1", door.port), timeout=10) as extra:
            assert greeting_of(extra) == (
                "421 4.7.0 Too many connections from your address, try again later")
            assert closed_by_server(extra)
        held.pop().close()
        assert accepted_soon(door.port), "a closed connection was never counted off"
    finally:
        for sock in held:
            sock.close()
        door.stop()


def accepted_soon(port: int, tries: int = 100) -> bool:
    """Whether a new connection gets the 220 greeting (the server counts a closed
    connection off when it notices the close, so the first tries may be early)."""
    for _ in range(tries):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            greeting = greeting_of(sock)
        if greeting.startswith("220 "):
            return True
        time.sleep(0.05)
    return False


def test_an_idle_client_is_disconnected(app) -> None:  # type: ignore[no-untyped-def]
    door = start_door(app, idle_timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", door.port), timeout=30) as sock:
            assert greeting_of(sock).startswith("220 ")
            assert closed_by_server(sock)  # within the socket's 30 s, long after 0.5 s
    finally:
        door.stop()


def test_a_slow_message_that_keeps_coming_is_not_cut_off(app) -> None:  # type: ignore[no-untyped-def]
    """The timeout limits silence: a DATA that takes several timeouts to arrive,
    a line at a time, is stored."""
    door = start_door(app, idle_timeout=1.0)
    lines = mail(message_id="slow@school.example").split(b"\r\n")
    try:
        with socket.create_connection(("127.0.0.1", door.port), timeout=30) as sock:
            stream = sock.makefile("rwb")
            read_reply(stream)
            for command in (b"EHLO client.example", b"MAIL FROM:<t@school.example>",
                            f"RCPT TO:<{HELPLINE}>".encode(), b"DATA"):
                stream.write(command + b"\r\n")
                stream.flush()
                read_reply(stream)
            for line in lines + [b"", *[b"and more"] * 15]:
                stream.write(line + b"\r\n")
                stream.flush()
                time.sleep(0.2)  # 16 x 0.2 s: three times the timeout, never silent for one
            stream.write(b".\r\n")
            stream.flush()
            assert read_reply(stream) == "250 2.0.0 Message accepted for delivery"
    finally:
        door.stop()
    assert [r.dedup_key for r in inbox_rows(app)] == ["mid:slow@school.example"]


def test_greeting_ehlo_and_help_name_no_software_or_version(door: SmtpDoor) -> None:
    with socket.create_connection(("127.0.0.1", door.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        replies = [read_reply(stream)]
        for command in (b"EHLO client.example", b"HELP"):
            stream.write(command + b"\r\n")
            stream.flush()
            replies.append(read_reply(stream))
    assert replies[0] == "220 helpline.example ESMTP"
    assert replies[1].splitlines()[0] == "250-helpline.example"
    said = "\n".join(replies).lower()
    assert "python" not in said and "aiosmtpd" not in said and aiosmtpd_version not in said


def test_the_daemon_wires_the_limits_from_the_settings(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=system_clock,  # the scheduler's first runs are due at once
                   smtp={"listen": "127.0.0.1:0", "max_recipients": 2,
                         "max_connections_per_client": 1, "idle_timeout_seconds": 30})
    daemon = Daemon(app, threading.Event())
    daemon.start()
    try:
        assert daemon.smtp_port
        assert daemon.smtp_address == f"127.0.0.1:{daemon.smtp_port}"  # the port it got
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
            client.ehlo()
            client.mail("t@school.example")
            codes = [client.rcpt(HELPLINE)[0], client.rcpt(HELPLINE)[0], client.rcpt(HELPLINE)]
            assert codes[:2] == [250, 250] and codes[2] == (452, b"4.5.3 Too many recipients")
            with socket.create_connection(("127.0.0.1", daemon.smtp_port), timeout=10) as sock:
                assert greeting_of(sock).startswith("421 4.7.0 ")
    finally:
        daemon.shutdown()


def test_the_daemon_says_where_it_listens_on_ipv6(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(smtp={"listen": "[::1]:0"})
    daemon = Daemon(app, threading.Event())
    daemon.start()
    try:
        assert daemon.smtp_address == f"[::1]:{daemon.smtp_port}"
        with smtplib.SMTP("::1", daemon.smtp_port) as client:
            assert client.noop()[0] == 250
    finally:
        daemon.shutdown()
