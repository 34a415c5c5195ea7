"""Message limits through the doors: a message over one is kept ``bad`` and answered by
nobody, the others are processed; ``inbox retry`` passes it only once the limit is
raised; and the hostile message of 20,000 attachments never keeps the SMTP door from
storing other mail while it is processed."""

from __future__ import annotations

import email
import smtplib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mailroom import pipeline
from mailroom.app import App, system_clock
from mailroom.cli.main import main
from mailroom.pipeline import process_inbox, process_item
from mailroom.runtime.ingest import ingest_paths
from mailroom.sending.sender import send_due
from mailroom.store.inbox import store_raw
from tests.factories import PRACTITIONERS, inbox_rows, mail, tickets
from tests.integration.test_smtp_door import HELPLINE, start_door

ATTACKER = "attacker@evil.example"
LIMITS = {"max_attachments": 3, "max_mime_parts": 20, "max_header_bytes": 2048}


def with_files(count: int, *, message_id: str, sender: str = ATTACKER,
               extra_header: bytes = b"") -> bytes:
    """A text body and ``count`` tiny attachments, as a hostile client would send them."""
    head = (f"From: {sender}\r\nTo: {HELPLINE}\r\nSubject: files\r\n"
            f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n').encode() + extra_header + b"\r\n"
    parts = [b"--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n"]
    parts += [b'--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: '
              b'attachment; filename="f%d.bin"\r\n\r\nx\r\n' % i for i in range(count)]
    return head + b"".join(parts) + b"--b--\r\n"


FILLER = b"X-Filler:" + b"".join(b" " + b"a" * 70 + b"\r\n" for _ in range(40))  # folded
HEADER_SIZE = len(with_files(0, message_id="head@evil.example", extra_header=FILLER)
                  .split(b"\r\n\r\n")[0]) + 2
OVER = {  # a message over each limit of LIMITS, and the reason its row ends with
    "attachments": (with_files(4, message_id="files@evil.example"),
                    "too many attachments: 4 (limit 3, limits.max_attachments)"),
    "mime-parts": (with_files(30, message_id="parts@evil.example"),
                   "too many MIME parts: 32 (limit 20, limits.max_mime_parts)"),
    "header": (with_files(1, message_id="head@evil.example", extra_header=FILLER),
               f"header too large: {HEADER_SIZE} bytes (limit 2048 bytes, "
               "limits.max_header_bytes)"),
}


def recipients(app: App) -> list[str]:
    """Everyone the helpline wrote to: each ``.eml`` the file transport wrote, by its
    envelope (``X-Mailroom-Rcpt-To``), after sending what is due."""
    send_due(app)
    found = []
    for path in sorted(app.settings.sent_dir.glob("*.eml")):
        sent = email.message_from_bytes(path.read_bytes())
        found += [a.strip() for a in str(sent["X-Mailroom-Rcpt-To"]).split(",")]
    return found


def requesters_answered(app: App) -> set[str]:
    return set(recipients(app)) - set(PRACTITIONERS)


def bad_rows(app: App) -> dict[str, str]:
    """door_ref or Message-ID → the first line of the error, for every bad row."""
    return {(r.door_ref or r.dedup_key): (r.error or "").splitlines()[0]
            for r in inbox_rows(app) if r.status == "bad"}


@pytest.mark.parametrize("limit", list(OVER))
def test_over_a_limit_through_the_smtp_door_is_kept_bad_and_unanswered(  # type: ignore[no-untyped-def]
    make_app, limit: str
) -> None:
    app = make_app(limits=LIMITS)
    hostile, reason = OVER[limit]
    door = start_door(app)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            assert client.sendmail(ATTACKER, [HELPLINE], hostile) == {}
            assert client.sendmail("jo@school.example", [HELPLINE],
                                   mail(sender="jo@school.example")) == {}
    finally:
        door.stop()
    assert process_inbox(app) == {"bad": 1, "created": 1}
    row = inbox_rows(app)[0]
    assert row.status == "bad" and row.error == f"mailroom.intake.limits.OverLimit: {reason}"
    assert row.raw is not None and row.raw.rstrip() == hostile.rstrip()  # kept as sent
    assert [t.requester for t in tickets(app)] == ["jo@school.example"]
    assert requesters_answered(app) == {"jo@school.example"}


@pytest.mark.parametrize("door", ["file", "imap"])
def test_every_door_applies_the_limits(make_app, tmp_path: Path, door: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app(limits=LIMITS)
    hostile, reason = OVER["attachments"]
    if door == "file":  # mailroom ingest
        path = tmp_path / "hostile.eml"
        path.write_bytes(hostile)
        assert ingest_paths(app, [str(path)])["rejected"] == 1
    else:  # what the IMAP poller stores; the worker processes it
        store_raw(app.door_sessions, hostile, door="imap", door_ref="INBOX:7:42")
        assert process_inbox(app) == {"bad": 1}
    assert [r.error for r in inbox_rows(app)] == [f"mailroom.intake.limits.OverLimit: {reason}"]
    assert tickets(app) == [] and recipients(app) == []


def test_retry_processes_it_only_once_the_limit_is_raised(  # type: ignore[no-untyped-def]
    make_app, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(limits=LIMITS)
    hostile, reason = OVER["attachments"]
    item = store_raw(app.sessions, hostile, door="file").inbox_id
    assert process_item(app, item) == "bad"
    config = str(tmp_path / "mailroom.toml")  # what make_app wrote

    assert main(["--config", config, "inbox", "retry", str(item)]) == 0
    assert capsys.readouterr().out == f"{item}: bad\n"
    [row] = inbox_rows(app)
    assert (row.status, row.attempts, row.error) == (
        "bad", 2, f"mailroom.intake.limits.OverLimit: {reason}")
    assert tickets(app) == [] and recipients(app) == []

    # The admin raises the limit (the command runs on the clock of the day: so does
    # the app that sends what it queued).
    raised = make_app(clock=system_clock, limits={**LIMITS, "max_attachments": 4})
    assert main(["--config", config, "inbox", "retry", str(item)]) == 0
    assert capsys.readouterr().out == f"{item}: created\n"
    assert [t.requester for t in tickets(app)] == [ATTACKER]
    assert requesters_answered(raised) == {ATTACKER}


# --------------------------------------------------------------------------- the hostile message


def gate(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Hold ``process_item`` between reading its row and parsing it until released:
    the moment it works on the bytes. (started, release)"""
    started, release = threading.Event(), threading.Event()
    prepare: Callable[..., object] = pipeline.prepare

    def held(*args: object) -> object:
        started.set()
        assert release.wait(120), "the deliveries did not finish"
        return prepare(*args)

    monkeypatch.setattr(pipeline, "prepare", held)
    return started, release


@pytest.mark.parametrize(("limits", "reason"), [
    ({}, "too many MIME parts: 20002 (limit 1000, limits.max_mime_parts)"),
    ({"max_mime_parts": 30_000}, "too many attachments: 20000 (limit 100, limits.max_attachments)"),
], ids=["parts-limit", "attachments-limit"])
def test_the_hostile_message_never_keeps_the_door_from_storing(  # type: ignore[no-untyped-def]
    make_app, monkeypatch: pytest.MonkeyPatch, limits: dict[str, int], reason: str
) -> None:
    """20,000 tiny attachments once held the write lock for minutes, and every other
    delivery got 451. Now, while it is processed (held in its parse until every other
    delivery is answered, so the two surely overlap), the door stores the rest."""
    # Twenty teachers send the same words: the acknowledgement circuit breaker is not tested here.
    app = make_app(limits=limits, acknowledgements={"same_content_per_window": 1000})
    hostile = with_files(20_000, message_id="hostile@evil.example")
    door = start_door(app, max_size=10_000_000)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            assert client.sendmail(ATTACKER, [HELPLINE], hostile) == {}
        [row] = inbox_rows(app)
        started, release = gate(monkeypatch)
        outcome: list[str] = []
        worker = threading.Thread(target=lambda: outcome.append(process_item(app, row.id)))
        worker.start()
        assert started.wait(60), "process_item never got to the message's bytes"
        senders = [f"t{i}@school.example" for i in range(20)]
        try:
            with smtplib.SMTP("127.0.0.1", door.port, timeout=60) as client:
                for sender in senders:  # each raises unless answered 250
                    assert client.sendmail(sender, [HELPLINE], mail(sender=sender)) == {}
        finally:
            release.set()
            worker.join(timeout=300)
    finally:
        door.stop()
    assert outcome == ["bad"]
    assert bad_rows(app) == {
        "mid:hostile@evil.example": f"mailroom.intake.limits.OverLimit: {reason}"}
    assert process_inbox(app) == {"created": 20}
    assert requesters_answered(app) == set(senders)
