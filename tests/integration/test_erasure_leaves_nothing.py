"""``mailroom erase`` leaves nothing behind: not in the database file or its log, the sent
mail, the exports, the attachments or the log, byte for byte, encoded or not.

Jo writes through the real SMTP door (smtplib over loopback), her mail goes
through the pipeline, the acknowledgement and the practitioners' notice go
out through the file transport, her out-of-office reply lands on no case,
two bounces name her (one of her acknowledgement, one of mail the helpline
cannot place, with its copy in base64), an export is written, and then the
admin runs ``mailroom erase``. Sam wrote too: his part stays.
"""

from __future__ import annotations

import base64
import email.policy
import io
import json
import logging
import os
import quopri
import re
import smtplib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select, text

from mailroom.app import App
from mailroom.cli.main import main, setup_logging
from mailroom.doors.contract import StoreInbox
from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.pipeline import process_inbox
from mailroom.privacy.redaction import own_addresses
from mailroom.private import make_private_dir
from mailroom.runtime.wiring import build_app
from mailroom.sending.sender import send_due
from mailroom.store.db import make_engine
from mailroom.store.migrate import upgrade
from mailroom.store.models import Base, Event, Ticket
from tests.factories import FixedClock, build_settings, mail

HELPLINE = "helpline@helpline.example"
JO, JO_NAME = "jo.ashdown@school.example", "Jo Ashdown"
SENTENCE = "Kestrel Moorhouse was filmed in the changing room at Ashcombe Lane"
NOTES = "Notes for the helpline: the locker code of Kestrel Moorhouse is 4471"
SAM, SAMS_SENTENCE = "sam@other.example", "Our deputy head has a fake account on Snapchat"
NEEDLES = (JO, JO_NAME, SENTENCE, NOTES, "Kestrel Moorhouse")


# --- looking for a needle in a haystack of bytes ------------------------------------------


def base64_pieces(needle: bytes) -> list[bytes]:
    """The parts of ``needle``'s base64 that do not depend on where it starts (3 offsets)."""
    pieces = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + needle)
        start, end = -(-offset * 4 // 3), (offset + len(needle)) * 4 // 3
        pieces.append(encoded[start:end])
    return pieces


def leaks(data: bytes, needles: tuple[str, ...] = NEEDLES) -> list[str]:
    """How each needle appears in ``data``: as written (any case), once quoted-printable
    is decoded, or in base64 (lines joined)."""
    lowered = data.lower()
    unquoted = quopri.decodestring(data).lower()
    joined = re.sub(rb"\r?\n", b"", data)
    found = []
    for needle in needles:
        raw = needle.encode()
        if raw.lower() in lowered:
            found.append(f"{needle!r}")
        elif raw.lower() in unquoted:
            found.append(f"{needle!r} (quoted-printable)")
        elif any(piece in joined for piece in base64_pieces(raw)):
            found.append(f"{needle!r} (base64)")
    return found


def files_with_leaks(var: Path) -> dict[str, list[str]]:
    return {str(path.relative_to(var)): found for path in sorted(var.rglob("*"))
            if path.is_file() and (found := leaks(path.read_bytes()))}


def rows_with_leaks(app: App) -> dict[str, list[str]]:
    """``table.column`` of every database value holding a needle."""
    found: dict[str, list[str]] = {}
    with app.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()).mappings():
                for column, value in row.items():
                    if hits := leaks(as_bytes(value)):
                        found.setdefault(f"{table.name}.{column}", []).extend(hits)
    return found


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


# --- the helpline, its door and its log ---------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """For SQLite a new file in var/, where the scan looks; PostgreSQL's rows are read."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url: str = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def helpline(database: str, tmp_path: Path) -> Iterator[App]:
    app = build_app(build_settings(tmp_path, database), clock=FixedClock())
    yield app
    app.close()


@pytest.fixture
def log_file(helpline: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """mailroom's stderr, as a daemon's would be redirected: var/mailroom.log."""
    path = make_private_dir(helpline.settings.var_dir) / "mailroom.log"
    stream = io.TextIOWrapper(io.FileIO(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w"),
                              write_through=True)
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging(False, own_addresses(helpline.settings))
    yield path
    root.handlers = saved
    root.setLevel(level)
    stream.close()


@pytest.fixture
def door(helpline: App) -> Iterator[SmtpDoor]:
    inbox = StoreInbox(helpline.door_sessions)
    door = SmtpDoor(HelplineHandler(inbox, helpline.settings.domains), host="127.0.0.1",
                    port=0, max_size=1_000_000, hostname="helpline.example")
    door.start()
    yield door
    door.stop()


def send(door: SmtpDoor, mail_from: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", door.port) as client:
        assert client.sendmail(mail_from, [HELPLINE], raw) == {}


def jos_case() -> bytes:
    body = f"{SENTENCE}.\nIt is on TikTok: https://www.tiktok.com/@ashcombe_leaks (café)\n"
    message = email.message_from_bytes(
        mail(sender=JO, name=JO_NAME, subject="Video of a pupil", body=body,
             message_id="case-1@school.example"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(NOTES.encode(), maintype="text", subtype="plain",
                           filename="notes.txt")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def bounce(*, original_id: str, copy: str) -> bytes:
    """A Postfix bounce for mail to Jo, its copy of the original in base64."""
    encoded = base64.encodebytes(copy.encode()).decode()
    return (
        "From: MAILER-DAEMON@mx.school.example (Mail Delivery System)\r\n"
        f"To: {HELPLINE}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Mon, 02 Mar 2026 12:00:05 +0000\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <bounce-{abs(hash(original_id))}@mx.school.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
        'report-type=delivery-status; boundary="B1"\r\n\r\n'
        "--B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.school.example.\r\n\r\n"
        f"<{JO}>: host mx.school.example said: 550 5.1.1 <{JO}>: Recipient address\r\n"
        "    rejected: User unknown (in reply to RCPT TO command)\r\n\r\n"
        "--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.school.example\r\n\r\n"
        f"Final-Recipient: rfc822; {JO}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B1\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: Test Helpline <{HELPLINE}>\r\nTo: {JO_NAME} <{JO}>\r\n"
        f"Subject: Re: Video of a pupil\r\nMessage-ID: <{original_id}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--B1--\r\n"
    ).encode()


def ack_message_id(app: App) -> str:
    sent = app.settings.sent_dir
    for path in sent.iterdir():
        headers = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if JO in str(headers["X-Mailroom-Rcpt-To"]):
            return str(headers["Message-ID"]).strip("<>")
    raise AssertionError("no acknowledgement to Jo was sent")


def cli(app: App, *args: str) -> int:
    return main(["--config", str(app.settings.source), *args])


# --- the test -----------------------------------------------------------------------------


def test_erase_leaves_nothing_behind(helpline: App, door: SmtpDoor, log_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    var, sqlite = helpline.settings.var_dir, helpline.engine.dialect.name == "sqlite"
    send(door, JO, jos_case())
    send(door, SAM, mail(sender=SAM, name="Sam Head", subject="Deputy head",
                         body=f"{SAMS_SENTENCE}.\n"))
    send(door, JO, mail(sender=JO, name=JO_NAME, subject="Out of office",
                        body="I am away until Monday. About Kestrel Moorhouse ask the office.\n",
                        headers={"Auto-Submitted": "auto-replied"}))
    assert process_inbox(helpline) == {"created": 2, "automatic": 1}
    assert send_due(helpline) == {"sent": 4}  # to Jo, to Sam, two notices to practitioners
    send(door, "", bounce(original_id=ack_message_id(helpline),
                          copy=f"We have your message about: {SENTENCE}\n"))
    send(door, "", bounce(original_id="lost-7@helpline.example",
                          copy=f"Earlier mail about {SENTENCE}\n"))
    assert process_inbox(helpline) == {"bounce": 2}
    assert cli(helpline, "export", "--requester", JO) == 0
    assert "`mailroom erase` deletes it too" in capsys.readouterr().err

    before = files_with_leaks(var)
    folders = {name.split("/")[0] for name in before}
    assert folders >= {"outbox-sent", "exports", "attachments"}, before
    assert ("mailroom.db" in folders or "mailroom.db-wal" in folders) == sqlite
    assert rows_with_leaks(helpline)  # the scan finds what is there
    assert "mailroom.log" not in before  # redacted from the start

    assert cli(helpline, "erase", "--requester", JO, "--yes", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpointed"] is (True if sqlite else None)
    assert (result["sent_files"], result["exports"], result["closed"]) == (2, 1, 1)
    assert result["left_behind"] == []

    assert files_with_leaks(var) == {}
    assert rows_with_leaks(helpline) == {}
    if sqlite:
        assert (var / "mailroom.db-wal").stat().st_size == 0
    _assert_sams_part_stays(helpline)
    _assert_jos_case_closed(helpline, result["fingerprint"])


def _assert_sams_part_stays(app: App) -> None:
    """His acknowledgement and the notice of his case are still in the sent folder."""
    sent = [p.read_bytes() for p in app.settings.sent_dir.iterdir()]
    assert sorted(bool(leaks(data, (SAMS_SENTENCE,))) for data in sent) == [False, True]
    assert all(leaks(data, (SAM,)) for data in sent)


def _assert_jos_case_closed(app: App, fingerprint: str) -> None:
    with app.sessions() as session:
        ticket = session.execute(select(Ticket).where(Ticket.id == 1)).scalar_one()
        actions = [e.action for e in session.execute(
            select(Event).where(Event.ticket_id == 1).order_by(Event.id)).scalars()]
        erased = session.execute(select(Event).where(
            Event.action == "requester.erased", Event.ticket_id.is_(None))).scalar_one()
    assert ticket.status == "closed" and ticket.closed_at is not None
    assert ticket.created_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # statistics stay
    assert actions[-2:] == ["ticket.status", "requester.erased"]
    assert erased.detail["fingerprint"] == fingerprint
