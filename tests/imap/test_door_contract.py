"""Every door goes through the door contract, wired by ``mailroom.runtime.doors``.

Two tables with a row per door (SMTP, IMAP, a file, stdin), each door driven
the way mail reaches it (smtplib over loopback, a real Dovecot, ``mailroom
ingest``):

- what the door hands in: the bytes as they came and the envelope (the door's
  name, its reference, the envelope sender and recipients), read back from
  the inbox row, on both databases;
- what the door answers when the store goes away at the very moment it hands
  a message in (PostgreSQL reached through a loopback proxy that is cut as
  the inbox INSERT starts): the SMTP door says ``451``, the IMAP door leaves
  the message in its folder, ``mailroom ingest -`` exits 75. Nothing is
  stored, and once the database is back the same message comes again and is
  stored, with the door's ordinary answer.
"""

from __future__ import annotations

import io
import smtplib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import make_url

from mailroom.app import App
from mailroom.cli import main as cli
from mailroom.doors.smtp import OK, STORE_UNAVAILABLE
from mailroom.errors import StoreUnavailable
from mailroom.runtime.doors import account_door, door_inbox, smtp_door
from mailroom.runtime.ingest import ingest_paths
from mailroom.store.db import make_engine
from mailroom.store.models import InboxItem
from tests.dovecot import Mailbox, make_message
from tests.factories import inbox_rows
from tests.tcp_proxy import TcpProxy

HELPLINE = "helpline@helpline.example"
TEACHER = "teacher@school.example"
LISTEN_ANYWHERE = {"listen": "127.0.0.1:0"}


@dataclass
class Visit:
    """What a door needs to take one message in: the App, and where mail waits for it."""

    app: App
    tmp_path: Path
    request: pytest.FixtureRequest

    @property
    def mailbox(self) -> Mailbox:
        mailbox: Mailbox = self.request.getfixturevalue("mailbox")
        return mailbox

    @property
    def config(self) -> Path:
        return self.tmp_path / "mailroom.toml"


# --- each door, driven the way mail reaches it; each returns the door's answer --------


def by_smtp(visit: Visit, raw: bytes) -> str:
    """The reply to DATA, from a door built by the wiring."""
    door = smtp_door(visit.app.settings, door_inbox(visit.app.door_sessions))
    door.start()
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.ehlo()
            client.mail(TEACHER)
            client.rcpt(HELPLINE)
            try:
                code, text = client.data(raw)
            except smtplib.SMTPDataError as refused:
                code, text = refused.smtp_code, refused.smtp_error
    finally:
        door.stop()
    return f"{code} {text.decode()}"


def by_imap(visit: Visit, raw: bytes) -> str:
    """Where the message is after one poll under the account's lock."""
    mailbox = visit.mailbox
    if not mailbox.message_ids("INBOX"):
        mailbox.deliver(raw)
    door = account_door(visit.app, mailbox.account(), door_inbox(visit.app.door_sessions))
    with suppress(StoreUnavailable):  # the answer is where the message is
        door.poll_once()
    if mailbox.message_ids("Processed"):
        return "moved to Processed"
    return "left in INBOX" if mailbox.message_ids("INBOX") else "gone"


def by_stdin(visit: Visit, raw: bytes) -> str:
    """``mailroom ingest -`` as an MTA pipes a message to it: its exit status."""
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(raw))
    try:
        return f"exit {cli.main(['--config', str(visit.config), 'ingest', '-'])}"
    finally:
        sys.stdin = stdin


def by_file(visit: Visit, raw: bytes) -> str:
    path = visit.tmp_path / "letter.eml"
    path.write_bytes(raw)
    summary = ingest_paths(visit.app, [str(path)])
    return f"{summary['messages']} message"


def by_stdin_inline(visit: Visit, raw: bytes) -> str:
    summary = ingest_paths(visit.app, ["-"], stdin=io.BytesIO(raw))
    return f"{summary['messages']} message"


# --- what each door hands in --------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    door: str
    ref: Callable[[Visit], str | None]
    mail_from: str | None
    rcpt_to: list[str]


HANDED_IN = [
    pytest.param(by_smtp, Expected("smtp", lambda v: None, TEACHER, [HELPLINE]), id="smtp"),
    pytest.param(by_imap, Expected("imap", lambda v: f"imap:{v.mailbox.user.name}:", None, []),
                 id="imap", marks=pytest.mark.imap),
    pytest.param(by_file, Expected("file", lambda v: str(v.tmp_path / "letter.eml"), None, []),
                 id="file"),
    pytest.param(by_stdin_inline, Expected("file", lambda v: "stdin", None, []), id="stdin"),
]


@pytest.mark.parametrize(("hand_in", "expected"), HANDED_IN)
def test_each_door_hands_in_the_bytes_and_its_envelope(
    hand_in: Callable[[Visit, bytes], str], expected: Expected, make_app: Any, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    visit = Visit(make_app(smtp=LISTEN_ANYWHERE), tmp_path, request)
    raw = make_message(1, tag="contract")
    hand_in(visit, raw)
    [row] = inbox_rows(visit.app)
    assert row.door == expected.door
    ref = expected.ref(visit)
    if expected.door == "imap":  # imap:<account>:<uidvalidity>:<uid>
        assert row.door_ref is not None and row.door_ref.startswith(str(ref)), row.door_ref
    else:
        assert row.door_ref == ref
    assert (row.mail_from, row.rcpt_to) == (expected.mail_from, expected.rcpt_to)
    assert row.raw is not None and _lf(row.raw) == _lf(raw)


def _lf(raw: bytes) -> bytes:
    """The bytes with LF line ends and no trailing empty lines (SMTP adds a CRLF)."""
    return raw.replace(b"\r\n", b"\n").rstrip(b"\n")


# --- what each door answers when the store is unavailable --------------------------

ANSWERS = [
    pytest.param(by_smtp, STORE_UNAVAILABLE, OK, id="smtp"),
    pytest.param(by_imap, "left in INBOX", "moved to Processed", id="imap",
                 marks=pytest.mark.imap),
    pytest.param(by_stdin, "exit 75", "exit 0", id="stdin"),
]


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as cut:
        yield cut


@contextmanager
def cut_as_the_inbox_is_written(proxy: TcpProxy) -> Iterator[list[str]]:
    """Take the database away just as the first inbox INSERT is sent; back on exit."""
    cuts: list[str] = []

    def cut(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not cuts and "INSERT INTO inbox " in statement:
            cuts.append(statement)
            proxy.down()

    event.listen(Engine, "before_cursor_execute", cut)
    try:
        yield cuts
    finally:
        event.remove(Engine, "before_cursor_execute", cut)
        proxy.up()


def inbox_count(pg_url: str) -> int:
    """Rows in the inbox, counted on a connection of our own (not through the proxy)."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(InboxItem)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize(("hand_in", "answer_when_down", "answer_when_back"), ANSWERS)
def test_each_door_answers_for_itself_when_the_store_is_unavailable(
    hand_in: Callable[[Visit, bytes], str], answer_when_down: str, answer_when_back: str,
    make_pg_app: Any, pg_url: str, proxy: TcpProxy, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    through_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    app = make_pg_app(database={"url": through_proxy.render_as_string(hide_password=False)},
                      smtp=LISTEN_ANYWHERE)
    visit = Visit(app, tmp_path, request)
    raw = make_message(1, tag="unavailable")

    with cut_as_the_inbox_is_written(proxy) as cuts:
        answer = hand_in(visit, raw)
    assert cuts, "the door never reached the inbox"
    assert answer == answer_when_down
    assert inbox_count(pg_url) == 0

    assert hand_in(visit, raw) == answer_when_back
    assert inbox_count(pg_url) == 1
