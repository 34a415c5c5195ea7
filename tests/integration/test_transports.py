"""Transports: files on disk, and SMTP over loopback to an in-process sink."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailroom.mailtypes import Address
from mailroom.outbox.compose import compose_message
from mailroom.sending.transports import (
    FileTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    transport_from_url,
)
from tests.integration.smtp_sink import (  # noqa: F401 (fixtures)
    CertFiles,
    SmtpSink,
    smtp_sink_fixture,
    tls_cert_fixture,
)
from tests.ports import refused_port

pytestmark = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"  # the sink's plain AUTH
)

HELPLINE = Address("helpline@helpline.example", "Online Safety Helpline")
REQUESTER = Address("jo@school.example", "Jo Bloggs")


def make_message(*, message_id: str = "mailroom.abc123@helpline.example") -> EmailMessage:
    return compose_message(
        from_addr=HELPLINE,
        to=[REQUESTER],
        subject="[Helpline #7] Your case HL-000007",
        text="Thank you, we have your message.\nZoë will reply.\n",
        message_id=message_id,
        in_reply_to="original@school.example",
        references=["original@school.example"],
        reply_to=Address("helpline+r-t7-abcdefghij@helpline.example"),
        auto_submitted="auto-replied",
        loop_token="helpline@helpline.example",
        date=datetime(2025, 3, 3, 9, 30, tzinfo=UTC),
    )


def send(transport: SmtpTransport | FileTransport, *, rcpt: tuple[str, ...] = ()) -> None:
    transport.send(
        make_message(), mail_from="bounces@helpline.example", rcpt_to=rcpt or (REQUESTER.addr,)
    )


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections but never says a word (for timeouts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


# -- file -------------------------------------------------------------------------


def test_file_transport_writes_one_parseable_eml(tmp_path: Path) -> None:
    clock = lambda: datetime(2025, 3, 3, 9, 30, 1, 123456, tzinfo=UTC)  # noqa: E731
    transport = FileTransport(tmp_path / "sent", clock=clock)

    send(transport, rcpt=("jo@school.example", "bcc@helpline.example"))

    [path] = list((tmp_path / "sent").iterdir())
    assert path.name == "20250303T093001123456Z-mailroom.abc123_helpline.example.eml"
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert parsed["Message-ID"] == "<mailroom.abc123@helpline.example>"
    assert parsed["X-Mailroom-Mail-From"] == "<bounces@helpline.example>"
    assert parsed["X-Mailroom-Rcpt-To"] == "jo@school.example, bcc@helpline.example"
    assert parsed["Subject"] == "[Helpline #7] Your case HL-000007"
    assert parsed.get_content() == "Thank you, we have your message.\nZoë will reply.\n"
    assert path.stat().st_mode & 0o077 == 0  # nobody else can read a case


def test_file_transport_leaves_no_temporary_files(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    for n in range(3):
        transport.send(
            make_message(message_id=f"mailroom.{n}@helpline.example"),
            mail_from="",
            rcpt_to=["jo@school.example"],
        )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3
    assert all(n.endswith(".eml") and not n.startswith(".") for n in names)


@pytest.mark.parametrize(
    "message_id",
    ["../../etc/passwd@x", "a/b\\c@x", "..@.."],
    ids=["dot-dot-slash", "slashes", "only-dots"],
)
def test_file_transport_names_stay_in_the_directory(tmp_path: Path, message_id: str) -> None:
    msg = make_message()
    msg.replace_header("Message-ID", f"<{message_id}>")
    FileTransport(tmp_path / "out").send(msg, mail_from="", rcpt_to=["jo@school.example"])
    [path] = list((tmp_path / "out").iterdir())
    assert path.parent == tmp_path / "out"
    assert "/" not in path.name and "\\" not in path.name


def test_file_transport_unwritable_directory_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(TemporaryFailure):
        send(FileTransport(blocker / "sent"))


# -- SMTP ------------------------------------------------------------------------


def test_smtp_delivers_to_the_sink(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5)

    send(transport, rcpt=("jo@school.example", "copy@helpline.example"))

    [delivery] = smtp_sink.wait_for(1)
    assert delivery.mail_from == "bounces@helpline.example"
    assert delivery.rcpt_tos == ("jo@school.example", "copy@helpline.example")
    message = delivery.message
    assert message["Message-ID"] == "<mailroom.abc123@helpline.example>"
    assert message["In-Reply-To"] == "<original@school.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message.get_content().replace("\r\n", "\n") == (
        "Thank you, we have your message.\nZoë will reply.\n"
    )
    assert not delivery.tls


def test_smtp_null_sender_is_allowed(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5)
    transport.send(make_message(), mail_from="", rcpt_to=["jo@school.example"])
    [delivery] = smtp_sink.wait_for(1)
    assert delivery.mail_from == "<>"


@pytest.mark.parametrize(
    ("code", "stage", "expected"),
    [
        (451, "data", TemporaryFailure),
        (550, "data", PermanentFailure),
        (554, "data", PermanentFailure),
        (450, "rcpt", TemporaryFailure),
        (550, "rcpt", PermanentFailure),
        (421, "mail", TemporaryFailure),
        (553, "mail", PermanentFailure),
    ],
    ids=[
        "451-data",
        "550-data",
        "554-data",
        "450-rcpt",
        "550-rcpt",
        "421-mail",
        "553-mail",
    ],
)
def test_smtp_refusals_are_classified_by_code(
    smtp_sink: SmtpSink, code: int, stage: str, expected: type[Exception]
) -> None:
    smtp_sink.refuse(code, at=stage)  # type: ignore[arg-type]
    transport = SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5)

    with pytest.raises(expected) as caught:
        send(transport)

    assert caught.value.code == code  # type: ignore[attr-defined]
    assert str(code) in str(caught.value)
    assert smtp_sink.deliveries == []


def test_smtp_permanent_failure_carries_the_relay_text(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse(550, "5.1.1 <jo@school.example>: Recipient address rejected", at="rcpt")
    with pytest.raises(PermanentFailure) as caught:
        send(SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5))
    assert caught.value.code == 550
    assert "Recipient address rejected" in caught.value.smtp_message


def test_smtp_mixed_refusals_of_every_recipient_are_temporary(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse(550, at="rcpt", recipients=["gone@school.example"])
    smtp_sink.refuse(450, at="rcpt", recipients=["full@school.example"])
    with pytest.raises(TemporaryFailure):
        send(
            SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5),
            rcpt=("gone@school.example", "full@school.example"),
        )


def test_smtp_partial_refusal_still_counts_as_sent(
    smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_sink.refuse(550, at="rcpt", recipients=["gone@school.example"])

    send(
        SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5),
        rcpt=("jo@school.example", "gone@school.example"),
    )

    [delivery] = smtp_sink.wait_for(1)
    assert delivery.rcpt_tos == ("jo@school.example",)
    assert "gone@school.example: 550" in caplog.text


def test_smtp_connection_refused_is_temporary() -> None:
    with refused_port() as port, pytest.raises(TemporaryFailure, match="cannot connect"):
        send(SmtpTransport("127.0.0.1", port, timeout=5))


def test_smtp_silent_server_times_out_as_temporary(silent_server: int) -> None:
    with pytest.raises(TemporaryFailure):
        send(SmtpTransport("127.0.0.1", silent_server, timeout=0.5))


def test_smtp_auth_with_url_encoded_credentials() -> None:
    user, password = "helpline@helpline.example", "p@ss:w/rd%?"
    with SmtpSink(auth=(user, password)) as sink:
        url = f"smtp://helpline%40helpline.example:p%40ss%3Aw%2Frd%25%3F@127.0.0.1:{sink.port}"
        send(transport_from_url(url))
        [delivery] = sink.wait_for(1)
    assert delivery.login == user


def test_smtp_wrong_password_is_a_temporary_session_failure() -> None:
    with SmtpSink(auth=("user", "right")) as sink:
        transport = SmtpTransport("127.0.0.1", sink.port, username="user", password="wrong")
        with pytest.raises(TemporaryFailure, match="session") as caught:
            send(transport)
    assert caught.value.code == 535


# -- TLS -------------------------------------------------------------------------


def test_starttls_delivers_over_tls(tls_cert: CertFiles) -> None:
    with SmtpSink(tls="starttls", cert=tls_cert) as sink:
        transport = transport_from_url(
            f"smtp://localhost:{sink.port}?starttls=1", ssl_context=tls_cert.client_context()
        )
        send(transport)
        [delivery] = sink.wait_for(1)
    assert delivery.tls


def test_implicit_tls_delivers(tls_cert: CertFiles) -> None:
    with SmtpSink(tls="implicit", cert=tls_cert) as sink:
        transport = transport_from_url(
            f"smtps://127.0.0.1:{sink.port}", ssl_context=tls_cert.client_context()
        )
        send(transport)
        [delivery] = sink.wait_for(1)
    assert delivery.tls


def test_starttls_refuses_an_untrusted_certificate(tls_cert: CertFiles) -> None:
    with SmtpSink(tls="starttls", cert=tls_cert) as sink:
        transport = SmtpTransport("localhost", sink.port, security="starttls", timeout=5)
        with pytest.raises(TemporaryFailure) as caught:
            send(transport)
        assert sink.deliveries == []
    assert isinstance(caught.value.__cause__, ssl.SSLError)


def test_plain_client_cannot_skip_required_starttls(tls_cert: CertFiles) -> None:
    with SmtpSink(tls="starttls", cert=tls_cert) as sink:
        with pytest.raises((TemporaryFailure, PermanentFailure)):
            send(SmtpTransport("127.0.0.1", sink.port, timeout=5))
        assert sink.deliveries == []


# -- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///var/spool/mailroom", Path("/var/spool/mailroom")),
        ("file://localhost/var/spool/mailroom", Path("/var/spool/mailroom")),
        ("file:relative/dir", Path("/base/relative/dir")),
        ("file:///with%20space", Path("/with space")),
    ],
    ids=["absolute", "localhost", "relative", "percent-decoded"],
)
def test_file_urls(url: str, expected: Path) -> None:
    transport = transport_from_url(url, base_dir=Path("/base"))
    assert isinstance(transport, FileTransport)
    assert transport.directory == expected


def test_a_file_url_naming_a_host_is_refused() -> None:
    """``file://var/outbox-sent`` is the folder /outbox-sent on the host "var" (RFC 8089),
    not var/outbox-sent: refused, with the two forms that mean a folder."""
    with pytest.raises(ValueError, match="names the host 'var'.*file:///ABSOLUTE/DIR"):
        transport_from_url("file://var/outbox-sent")


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user", "password", "timeout"),
    [
        ("smtp://relay.example", "relay.example", 25, "none", None, None, 30.0),
        ("smtp://relay.example:2525", "relay.example", 2525, "none", None, None, 30.0),
        ("smtp://relay.example?starttls=1", "relay.example", 587, "starttls", None, None, 30.0),
        ("smtps://u:p@relay.example", "relay.example", 465, "tls", "u", "p", 30.0),
        ("smtp://a%40b.c:x%3Ay@[::1]:25?timeout=5", "::1", 25, "none", "a@b.c", "x:y", 5.0),
        ("SMTP://relay.example:25?starttls=0", "relay.example", 25, "none", None, None, 30.0),
    ],
    ids=["defaults", "port", "starttls", "smtps-auth", "encoded-ipv6-timeout", "upper-scheme"],
)
def test_smtp_urls(
    url: str,
    host: str,
    port: int,
    security: str,
    user: str | None,
    password: str | None,
    timeout: float,
) -> None:
    transport = transport_from_url(url)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.security) == (host, port, security)
    assert (transport.username, transport.timeout) == (user, timeout)
    assert transport._password == (password or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.example",
        "smtp://",
        "smtp://relay.example:99999",
        "smtp://relay.example:port",
        "smtp://relay.example?tls=1",
        "smtp://relay.example?starttls=maybe",
        "smtp://relay.example?timeout=-1",
        "smtps://relay.example?starttls=1",
        "smtp://relay.example/path",
        "file://",
        "file:///dir?x=1",
        "relay.example:25",
    ],
    ids=[
        "scheme",
        "no-host",
        "port-range",
        "port-text",
        "unknown-option",
        "starttls-value",
        "timeout",
        "smtps-starttls",
        "path",
        "file-empty",
        "file-query",
        "no-scheme",
    ],
)
def test_bad_urls_raise_one_line_value_errors(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        transport_from_url(url)
    assert "\n" not in str(caught.value)


def test_errors_and_repr_never_show_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        transport_from_url("smtp://user:s3cret@relay.example?bogus=1")
    assert "s3cret" not in str(caught.value)
    transport = transport_from_url("smtp://user:s3cret@relay.example")
    assert "s3cret" not in repr(transport)


def test_send_checks_the_envelope(smtp_sink: SmtpSink) -> None:
    transport = SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5)
    with pytest.raises(ValueError):
        transport.send(make_message(), mail_from="a@b", rcpt_to=["x@y\r\nRCPT TO:<z@w>"])
    with pytest.raises(ValueError):
        transport.send(make_message(), mail_from="a@b", rcpt_to="x@y")
    assert smtp_sink.deliveries == []


def test_quit_failure_after_acceptance_is_not_an_error(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_quit(self: smtplib.SMTP) -> None:
        raise smtplib.SMTPServerDisconnected("gone after 250")

    monkeypatch.setattr(smtplib.SMTP, "quit", broken_quit)
    send(SmtpTransport(smtp_sink.host, smtp_sink.port, timeout=5))
    assert len(smtp_sink.wait_for(1)) == 1
