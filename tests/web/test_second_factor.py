"""The console's second factor: a TOTP code is accepted once (RFC 6238, 5.2), and the
secret is kept encrypted with a key file that is not in the database (on both
databases, through the console's HTTP interface, and `mailroom web` for a wrong key)."""

from __future__ import annotations

import base64
import logging
import stat

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.errors import ConfigError
from mailroom.store.models import Event, StaffUser
from mailroom.web.server import ConsoleServer
from mailroom.web.staff import add_user
from tests.factories import FixedClock
from tests.web.console import BASE, browser, csrf_of, sign_in_link

ADA = "ada@helpline.example"


def link_signed_in(app: App, client: TestClient, address: str = ADA) -> str:
    """Signed in by the mailed link; the code page's HTML (a second factor owed)."""
    form = client.get("/signin")
    client.post("/signin", data={"address": address, "csrf": csrf_of(form.text)})
    link = sign_in_link(app, address)
    landing = client.get(link.removeprefix(BASE))
    used = client.post("/signin/link", data={"token": link.rsplit("/", 1)[1],
                                             "csrf": csrf_of(landing.text)})
    assert used.headers["location"] == "/signin/code"
    return client.get("/signin/code").text


def give_code(client: TestClient, page: str, code: str) -> int:
    return client.post("/signin/code", data={"code": code, "csrf": csrf_of(page)}).status_code


def enrolled_admin(app: App, client: TestClient) -> str:
    """An admin who set up their second factor (with the code of the clock's step);
    their secret."""
    with app.sessions.begin() as session:
        add_user(session, ADA, "admin", actor="test", at=app.now())
    page = link_signed_in(app, client)
    secret = page.split('class="secret">')[1].split("<")[0]
    assert give_code(client, page, pyotp.TOTP(secret).at(app.now())) == 303
    return secret


def stored_secret(app: App) -> str:
    with app.sessions() as session:
        value = session.execute(select(StaffUser.totp_secret)
                                .where(StaffUser.address == ADA)).scalar_one()
    assert value is not None
    return value


# --- a code works once -----------------------------------------------------------------------


def test_a_code_is_accepted_once_and_the_next_steps_code_works(
        app: App, client: TestClient, clock: FixedClock) -> None:
    secret = enrolled_admin(app, client)
    totp = pyotp.TOTP(secret)
    with browser(app) as second:  # the code of the set-up is used up
        page = link_signed_in(app, second)
        assert give_code(second, page, totp.at(app.now())) == 400
        assert second.get("/").headers["location"] == "/signin/code"

    clock.advance(seconds=30)
    code = totp.at(app.now())
    with browser(app) as third:
        assert give_code(third, link_signed_in(app, third), code) == 303
        assert third.get("/").status_code == 200
    with browser(app) as fourth:  # the same code again, in its window: refused
        page = link_signed_in(app, fourth)
        answer = fourth.post("/signin/code", data={"code": code, "csrf": csrf_of(page)})
        assert answer.status_code == 400 and "used already" in answer.text
        earlier = totp.at(app.now(), counter_offset=-1)  # an older step, still in the window
        assert give_code(fourth, page, earlier) == 400
        clock.advance(seconds=30)
        assert give_code(fourth, page, totp.at(app.now())) == 303
        assert fourth.get("/").status_code == 200
    with app.sessions() as session:
        reused = session.execute(select(Event).where(
            Event.action == "console.code_reused")).scalars().all()
    assert [event.actor for event in reused] == [ADA, ADA, ADA]


def test_a_code_from_the_phone_a_step_ahead_is_accepted_and_uses_up_its_step(
        app: App, client: TestClient, clock: FixedClock) -> None:
    secret = enrolled_admin(app, client)
    totp = pyotp.TOTP(secret)
    clock.advance(seconds=30)
    ahead = totp.at(app.now(), counter_offset=1)
    with browser(app) as second:
        assert give_code(second, link_signed_in(app, second), ahead) == 303
    clock.advance(seconds=30)  # the phone's code of now is the one used a step early
    with browser(app) as third:
        page = link_signed_in(app, third)
        assert give_code(third, page, totp.at(app.now())) == 400
        clock.advance(seconds=30)
        assert give_code(third, page, totp.at(app.now())) == 303


# --- the secret is encrypted ---------------------------------------------------------------


def test_the_database_holds_no_secret_only_what_the_key_file_opens(
        app: App, client: TestClient, clock: FixedClock) -> None:
    secret = enrolled_admin(app, client)
    stored = stored_secret(app)
    assert secret not in stored and not set(stored) <= set(base64._b32alphabet.decode() + "=")
    key_file = app.settings.var_dir / "totp.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Fernet(key_file.read_bytes().strip()).decrypt(stored.encode()).decode() == secret
    clock.advance(seconds=30)
    with browser(app) as again:  # signing in with the second factor still works
        assert give_code(again, link_signed_in(app, again), pyotp.TOTP(secret).at(app.now())) \
            == 303


def test_no_key_file_is_made_before_a_secret_is_kept(app: App) -> None:
    ConsoleServer(app, on_queued=lambda: None).stop()
    assert not (app.settings.var_dir / "totp.key").exists()


def clear_secret_of_an_earlier_release(app: App) -> str:
    secret = pyotp.random_base32()
    with app.sessions.begin() as session:
        add_user(session, ADA, "admin", actor="test", at=app.now())
        session.execute(StaffUser.__table__.update().values(totp_secret=secret))
    return secret


def test_a_clear_secret_is_encrypted_when_the_console_starts(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    secret = clear_secret_of_an_earlier_release(app)
    with caplog.at_level(logging.INFO, logger="mailroom.web"):
        server = ConsoleServer(app, on_queued=lambda: None)
        server.stop()
    stored = stored_secret(app)
    assert stored != secret and secret not in stored
    assert "encrypted 1 second-factor secret(s)" in caplog.text
    with browser(app) as client:
        assert give_code(client, link_signed_in(app, client),
                         pyotp.TOTP(secret).at(app.now())) == 303


def test_a_clear_secret_is_encrypted_when_first_read(app: App) -> None:
    secret = clear_secret_of_an_earlier_release(app)
    with browser(app) as client:  # a console that did not start through ConsoleServer
        page = link_signed_in(app, client)
        assert stored_secret(app) == secret  # not read yet
        assert give_code(client, page, pyotp.TOTP(secret).at(app.now())) == 303
    assert secret not in stored_secret(app)


# --- a wrong key file -----------------------------------------------------------------------


def test_a_wrong_key_file_stops_the_console_in_one_line(
        app: App, client: TestClient, cli) -> None:  # type: ignore[no-untyped-def]
    enrolled_admin(app, client)
    key_file = app.settings.var_dir / "totp.key"
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(ConfigError) as raised:
        ConsoleServer(app, on_queued=lambda: None)
    assert raised.value.problems == [
        f"security.totp_key_file: {key_file} is not the key the second-factor secrets in "
        "the database were encrypted with: put back the key file kept with the database's "
        "backup, or remove and add again the users who set up a second factor"]

    status, out, err = cli("web")
    assert status == 1 and out == ""
    assert err.splitlines() == [f"mailroom: config: {raised.value.problems[0]}"]
    assert "Traceback" not in err

    key_file.write_text("not a key\n")
    status, _, err = cli("web")
    assert status == 1 and err.splitlines() == [
        f"mailroom: config: security.totp_key_file: {key_file} does not hold a key "
        "(44 characters of URL-safe base64, as mailroom writes it)"]
    key_file.unlink()
    status, _, err = cli("web")
    assert status == 1 and len(err.splitlines()) == 1 and "is missing" in err


def test_a_key_file_changed_under_a_running_console_refuses_the_code_in_one_log_line(
        app: App, client: TestClient, clock: FixedClock,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = enrolled_admin(app, client)
    (app.settings.var_dir / "totp.key").write_bytes(Fernet.generate_key())
    clock.advance(seconds=30)
    with browser(app) as again, caplog.at_level(logging.ERROR, logger="mailroom.web"):
        page = link_signed_in(app, again)
        answer = again.post("/signin/code", data={"code": pyotp.TOTP(secret).at(app.now()),
                                                  "csrf": csrf_of(page)})
        assert answer.status_code == 503 and "cannot be checked" in answer.text
        assert again.get("/").headers["location"] == "/signin/code"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "is not the key the second-factor secrets" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage() and str(app.settings.var_dir) in \
        errors[0].getMessage()


def test_no_second_key_is_made_while_secrets_encrypted_with_a_lost_one_exist(
        app: App, client: TestClient, clock: FixedClock) -> None:
    enrolled_admin(app, client)
    key_file = app.settings.var_dir / "totp.key"
    key_file.unlink()  # e.g. a second machine serving the console, without the key
    with browser(app) as anna:
        form = anna.get("/signin")
        anna.post("/signin", data={"address": "anna@helpline.example",
                                   "csrf": csrf_of(form.text)})
        link = sign_in_link(app, "anna@helpline.example")
        landing = anna.get(link.removeprefix(BASE))
        anna.post("/signin/link", data={"token": link.rsplit("/", 1)[1],
                                        "csrf": csrf_of(landing.text)})
        account = anna.get("/account").text
        secret = account.split('class="secret">')[1].split("<")[0]
        answer = anna.post("/account/code", data={"code": pyotp.TOTP(secret).at(app.now()),
                                                  "csrf": csrf_of(account)})
        assert answer.status_code == 503 and "cannot be checked" in answer.text
    assert not key_file.exists()
    with app.sessions() as session:
        kept = session.execute(select(StaffUser.address).where(
            StaffUser.totp_secret.is_not(None))).scalars().all()
    assert kept == [ADA]
