"""STARTTLS on the SMTP listener, with a throwaway self-signed certificate and smtplib.

The certificate is made by ``openssl`` for 127.0.0.1 and the client verifies it
against that certificate: the test proves a real, verified TLS session, not
just that the word STARTTLS appears in EHLO.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom.doors.contract import StoreInbox
from mailroom.errors import ConfigError
from mailroom.runtime.describe import describe_settings
from mailroom.runtime.doors import smtp_door, smtp_tls_context
from mailroom.settings import load_settings
from tests.factories import inbox_rows, mail
from tests.tls import self_signed

HELPLINE = "helpline@helpline.example"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))  # verifies the chain and the name


def tls_settings(cert: Path, key: Path, **more: object) -> dict[str, object]:
    return {"listen": "127.0.0.1:0", "tls_certificate": str(cert), "tls_key": str(key), **more}


@pytest.fixture
def start_listener(make_app) -> Iterator:  # type: ignore[no-untyped-def]
    doors = []

    def start(**smtp: object):  # type: ignore[no-untyped-def]
        app = make_app(smtp=smtp)
        door = smtp_door(app.settings, StoreInbox(app.door_sessions))
        door.start()
        doors.append(door)
        return app, door

    yield start
    for door in doors:
        door.stop()


def test_mail_arrives_over_a_verified_starttls_session(start_listener, certificate) -> None:
    app, door = start_listener(**tls_settings(*certificate))
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_context(certificate[0]))
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        refused = client.sendmail("teacher@school.example", [HELPLINE],
                                  mail(message_id="tls1@school.example"))
    assert refused == {}
    [row] = inbox_rows(app)
    assert b"tls1@school.example" in row.raw


def test_plain_mail_is_still_accepted_when_starttls_is_only_offered(
        start_listener, certificate) -> None:
    app, door = start_listener(**tls_settings(*certificate))
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        client.sendmail("teacher@school.example", [HELPLINE], mail(message_id="plain@s.example"))
    assert len(inbox_rows(app)) == 1


def test_required_starttls_refuses_mail_before_tls(start_listener, certificate) -> None:
    app, door = start_listener(**tls_settings(*certificate, require_starttls=True))
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        client.ehlo()
        code, text = client.mail("teacher@school.example")
        assert code == 530 and b"STARTTLS" in text
        client.starttls(context=client_context(certificate[0]))
        client.ehlo()
        refused = client.sendmail("teacher@school.example", [HELPLINE],
                                  mail(message_id="after-tls@school.example"))
    assert refused == {}
    [row] = inbox_rows(app)
    assert b"after-tls@school.example" in row.raw


def test_no_starttls_without_a_certificate(start_listener) -> None:
    _app, door = start_listener(listen="127.0.0.1:0")
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        client.ehlo()
        assert not client.has_extn("starttls")


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text('[smtp]\ntls_certificate = "/etc/ssl/cert.pem"\n'
                      '[paths]\nvar_dir = "%s"\n' % (tmp_path / "var"))
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert raised.value.problems == [
        "smtp.tls_key: required with smtp.tls_certificate and smtp.tls_key"]


def test_requiring_starttls_needs_a_certificate(tmp_path: Path) -> None:
    config = tmp_path / "mailroom.toml"
    config.write_text('[smtp]\nrequire_starttls = true\n'
                      '[paths]\nvar_dir = "%s"\n' % (tmp_path / "var"))
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert raised.value.problems == [
        "smtp.require_starttls: needs smtp.tls_certificate and smtp.tls_key"]


def test_an_unreadable_certificate_is_a_config_error_naming_the_key(
        make_app, tmp_path: Path, certificate) -> None:
    app = make_app(smtp=tls_settings(tmp_path / "missing.pem", certificate[1]))
    with pytest.raises(ConfigError) as raised:
        smtp_tls_context(app.settings)
    [problem] = raised.value.problems
    assert problem.startswith("smtp.tls_certificate: cannot read") and "missing.pem" in problem
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    app = make_app(smtp=tls_settings(garbage, certificate[1]))
    with pytest.raises(ConfigError, match="smtp.tls_certificate: cannot load"):
        smtp_tls_context(app.settings)


def test_check_config_says_starttls_is_required(make_app, certificate) -> None:
    app = make_app(smtp=tls_settings(*certificate, require_starttls=True))
    described = describe_settings(app.settings, {})
    assert described["smtp tls"] == f"STARTTLS required, certificate {certificate[0]}"
