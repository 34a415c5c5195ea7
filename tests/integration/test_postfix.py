"""Postfix in front of mailroom, configured with ``docs/examples/postfix/``, end to end.

- The relay (``main.cf``): a professional's mail goes through Postfix to the
  daemon's SMTP listener; their reply to the signed address of the
  acknowledgement (``helpline+r-…@``) goes through Postfix too, keeps its plus
  part, and lands in their case and not in another. Any other address of the
  domain is refused by Postfix itself.
- The pipe (``main-pipe.cf``): Postfix runs ``mailroom ingest -`` with the
  envelope. While the database is down the pipe exits 75 and Postfix keeps the
  message; once it is back, a retry delivers it exactly once, into the case its
  envelope recipient names (the reply was a Bcc: only the envelope knows).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mailroom.app import App
from mailroom.store.models import InboxItem, OutboxItem
from tests.conftest import IN_CI
from tests.factories import FixedClock, as_sent, build_settings, deliver, mail, ticket_of
from tests.postfix import PIPE_USER, PostfixServer, mailroom_for_pipe, postfix_problem
from tests.security.helpline import Helpline
from tests.tcp_proxy import TcpProxy
from tests.tls import self_signed

HELPLINE = "helpline@helpline.example"
JO = "jo.teacher@school.example"
KIM = "kim.head@academy.example"
WAIT_LIMIT = 120.0


@pytest.fixture(autouse=True)
def postfix_here() -> None:
    problem = postfix_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: the Postfix tests must not be skipped)")
        pytest.skip(problem)


def wait_until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen")
        time.sleep(0.05)


def inbox_with(app: App, message_id: str) -> list[InboxItem]:
    with app.sessions() as session:
        rows = session.execute(select(InboxItem).order_by(InboxItem.id)).scalars().all()
    return [row for row in rows if f"<{message_id}>".encode() in row.raw]


@pytest.fixture
def helpline(make_app) -> Iterator[Helpline]:  # type: ignore[no-untyped-def]
    running = Helpline(make_app(clock=FixedClock(datetime.now(UTC)),
                                smtp={"listen": "127.0.0.1:0"}))
    yield running
    running.stop()


def through(postfix: PostfixServer, helpline: Helpline, raw: bytes, message_id: str, *,
            mail_from: str, to: list[str]) -> None:
    """Send through Postfix, wait until mailroom stored it, then until it settled."""
    assert postfix.send(raw, mail_from=mail_from, to=to) == {}
    try:
        wait_until(f"{message_id} relayed to mailroom",
                   lambda: bool(inbox_with(helpline.app, message_id)))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{postfix.log()}") from None
    helpline.settle()


def test_a_reply_through_postfix_keeps_its_plus_address_and_finds_its_case(
        helpline: Helpline) -> None:
    with PostfixServer.relay_to(helpline.port) as postfix:
        first = mail(sender=JO, name="Jo Teacher", message_id="jo1@school.example",
                     date=datetime.now(UTC))
        through(postfix, helpline, first, "jo1@school.example", mail_from=JO, to=[HELPLINE])
        other = mail(sender=KIM, name="Kim Head", message_id="kim1@academy.example",
                     date=datetime.now(UTC))
        through(postfix, helpline, other, "kim1@academy.example", mail_from=KIM, to=[HELPLINE])
        ack = helpline.last_for(JO)
        reply_to = ack.reply_address()
        assert reply_to.startswith("helpline+r-") and reply_to.endswith("@helpline.example")

        # No In-Reply-To, no References, no case tag: only the signed address says which case.
        reply = mail(sender=JO, name="Jo Teacher", to=reply_to, subject="Now there are two",
                     body="A second fake account appeared today.\n",
                     message_id="jo2@school.example", date=datetime.now(UTC))
        through(postfix, helpline, reply, "jo2@school.example", mail_from=JO, to=[reply_to])

        [row] = inbox_with(helpline.app, "jo2@school.example")
        assert row.door == "smtp" and row.rcpt_to == [reply_to]  # the plus part arrived whole
        assert b"Received: from" in row.raw and b"fixture.localdomain" in row.raw
        jo_case = ticket_of(helpline.app, "jo1@school.example")
        assert ticket_of(helpline.app, "jo2@school.example") == jo_case
        assert ticket_of(helpline.app, "kim1@academy.example") != jo_case

        with pytest.raises(Exception) as refused:  # smtplib: every recipient refused
            postfix.send(mail(sender=JO), mail_from=JO, to=["someone.else@helpline.example"])
        assert "550" in str(refused.value) and "someone.else@helpline.example" in str(
            refused.value)


# --- STARTTLS between Postfix and mailroom ---------------------------------------------


def sha256_fingerprint(cert: Path) -> str:
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_helpline(make_app, certificate) -> Iterator[Helpline]:  # type: ignore[no-untyped-def]
    cert, key = certificate
    running = Helpline(make_app(clock=FixedClock(datetime.now(UTC)), smtp={
        "listen": "127.0.0.1:0", "tls_certificate": str(cert), "tls_key": str(key),
        "require_starttls": True}))
    yield running
    running.stop()


def test_postfix_relays_over_starttls_to_the_pinned_certificate(
        tls_helpline: Helpline, certificate) -> None:
    with PostfixServer.relay_to(tls_helpline.port,
                                fingerprint=sha256_fingerprint(certificate[0])) as postfix:
        through(postfix, tls_helpline, mail(sender=JO, message_id="tls@school.example",
                                            date=datetime.now(UTC)),
                "tls@school.example", mail_from=JO, to=[HELPLINE])
        assert "Verified TLS connection established to 127.0.0.1" in postfix.log()
        assert ticket_of(tls_helpline.app, "tls@school.example") is not None


def test_postfix_keeps_the_mail_when_the_certificate_is_not_the_pinned_one(
        tls_helpline: Helpline) -> None:
    with PostfixServer.relay_to(tls_helpline.port, fingerprint=":".join(["00"] * 32)) as postfix:
        assert postfix.send(mail(sender=JO, message_id="pinned@school.example"), mail_from=JO,
                            to=[HELPLINE]) == {}
        [queued] = postfix.wait_for_queue("a deferral", lambda q: any(
            m["queue_name"] == "deferred" for m in q))
        assert "fingerprint" in str(queued["recipients"]).lower() or "certificate" in str(
            queued["recipients"]).lower(), queued
    assert inbox_with(tls_helpline.app, "pinned@school.example") == []


# --- the pipe -----------------------------------------------------------------------


@pytest.fixture
def pipe_home() -> Iterator[Path]:
    """A folder the pipe's user (nobody) can read, with a data directory it owns."""
    home = Path(tempfile.mkdtemp(prefix="mailroom-pipe-"))
    home.chmod(0o755)
    var = home / "var"
    var.mkdir()
    user = pwd.getpwnam(PIPE_USER)
    os.chown(var, user.pw_uid, user.pw_gid)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def requester_reply_address(app: App, requester: str) -> str:
    with app.sessions() as session:
        ack = session.execute(select(OutboxItem).where(
            OutboxItem.kind == "acknowledgement", OutboxItem.to_addr == requester)).scalar_one()
    return str(as_sent(app, ack)["Reply-To"].addresses[0].addr_spec)


def test_the_pipe_defers_while_the_database_is_down_and_a_retry_delivers_once(
        make_pg_app, pg_url: str, pipe_home: Path) -> None:
    app = make_pg_app()
    assert deliver(app, mail(sender=JO, message_id="jo1@school.example",
                             date=datetime.now(UTC))) == "created"
    assert deliver(app, mail(sender=KIM, message_id="kim1@academy.example",
                             date=datetime.now(UTC))) == "created"
    reply_to = requester_reply_address(app, JO)
    database = make_url(pg_url)
    mailroom = mailroom_for_pipe(pipe_home)
    if mailroom is None:
        pytest.fail("no Python for the pipe's user (nobody) to run mailroom with")
    with TcpProxy(database.host or "127.0.0.1", database.port or 5432) as proxy:
        via_proxy = database.set(host="127.0.0.1", port=proxy.port)
        build_settings(pipe_home, via_proxy.render_as_string(hide_password=False))
        (pipe_home / "mailroom.toml").chmod(0o644)
        proxy.down()
        with PostfixServer.pipe_to(mailroom, pipe_home / "mailroom.toml") as postfix:
            # A Bcc to the signed address: the To header names the plain address only.
            reply = mail(sender=JO, to=HELPLINE, subject="Now there are two",
                         body="A second fake account appeared today.\n",
                         message_id="jo2@school.example", date=datetime.now(UTC))
            assert postfix.send(reply, mail_from=JO, to=[reply_to]) == {}
            [queued] = postfix.wait_for_queue("a deferral", lambda q: any(
                m["queue_name"] == "deferred" for m in q))
            [recipient] = queued["recipients"]  # type: ignore[misc]
            assert recipient["address"] == reply_to
            assert "database unavailable" in recipient["delay_reason"]
            assert inbox_with(app, "jo2@school.example") == []

            proxy.up()
            postfix.flush()
            postfix.wait_for_queue("the delivery", lambda q: q == [])
            postfix.flush()  # nothing left to deliver twice
            assert postfix.queue() == []
            assert "status=sent (delivered via mailroom service" in postfix.log()
            assert "threaded: 1" in postfix.log()  # what ingest printed

    [row] = inbox_with(app, "jo2@school.example")
    assert row.door == "file" and row.door_ref == "stdin"
    assert row.mail_from == JO and row.rcpt_to == [reply_to]
    assert ticket_of(app, "jo2@school.example") == ticket_of(app, "jo1@school.example")
    assert ticket_of(app, "kim1@academy.example") != ticket_of(app, "jo1@school.example")
