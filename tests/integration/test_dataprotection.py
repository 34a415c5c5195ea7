"""Data-protection requests: export everything about an address, then erase it."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.app import App
from mailroom.privacy.dataprotection import (
    erase_requester,
    erasure_fingerprint,
    export_requester,
)
from mailroom.reports.data import Period, build_report
from mailroom.sending.sender import send_due
from mailroom.store.models import (
    AttachmentRow,
    Base,
    Escalation,
    Event,
    InboxItem,
    Message,
    OutboxItem,
    Participant,
    Ticket,
)
from tests.factories import deliver, mail
from tests.report_dataset import comparable, run_cli

JO, JO_NAME = "jo@school.example", "Jo Teacher"
SAM = "sam@other.example"
PRIVATE = b"\x89PNG only Jo sent this"
IN_REPLY = b"\x89PNG Jo's screenshot on Sam's case"
SHARED = b"\x89PNG Jo and Sam both sent this"
NOW_QUARTER = Period(date(2026, 1, 1), date(2026, 3, 31))


@dataclass
class Cases:
    jo_first: int
    jo_second: int
    sam_with_jo: int  # Sam's case, Jo in Cc
    inbound_from_jo: list[bytes]


def send(app: App, *, attachment: bytes, filename: str, outcome: str = "created",
         **fields: object) -> tuple[int, bytes]:
    message = email.message_from_bytes(mail(**fields), policy=email.policy.default)  # type: ignore[arg-type]
    message.add_attachment(attachment, maintype="image", subtype="png",  # type: ignore[attr-defined]
                           filename=filename)
    raw = message.as_bytes()
    app.clock.advance(hours=1)  # type: ignore[attr-defined]  # past the acknowledgement limit
    assert deliver(app, raw) == outcome
    with app.sessions() as session:
        return session.execute(select(func.max(Ticket.id))).scalar_one(), raw


@pytest.fixture
def cases(app: App) -> Cases:
    first, raw_first = send(app, attachment=PRIVATE, filename="jo smith.png", sender=JO,
                            name=JO_NAME, subject="Fake profile of Jo Teacher")
    second, raw_second = send(app, attachment=SHARED, filename="screenshot.png", sender=JO,
                              name=JO_NAME, subject="Group chat about our class",
                              body="Another one: https://www.instagram.com/p/abc\n")
    sams, _ = send(app, attachment=SHARED, filename="same.png", sender=SAM, name="Sam Head",
                   cc=[JO], subject="Staff targeted", message_id="sam-1@other.example",
                   body="My colleague is in Cc. https://www.tiktok.com/@x\n")
    _, raw_reply = send(app, attachment=IN_REPLY, filename="from jo.png", sender=JO,
                        name=JO_NAME, cc=[SAM], subject="Re: Staff targeted",
                        in_reply_to="sam-1@other.example", outcome="threaded",
                        body="Jo here: it started in our class chat.\n")
    with app.sessions.begin() as session:
        session.get_one(Ticket, first).category = "impersonation"
        session.add(Escalation(ticket_id=first, platform="tiktok", opened_at=app.now(),
                               responded_at=app.now(), outcome="removed", follow_ups=0,
                               context=f"{JO_NAME} ({JO}) is impersonated", urls=[]))
    send_due(app)
    return Cases(first, second, sams, [raw_first, raw_second, raw_reply])


# --- export ------------------------------------------------------------------------


def test_export_writes_json_raw_mail_and_attachments(app: App, cases: Cases,
                                                     tmp_path: Path) -> None:
    target = export_requester(app, JO.upper(), tmp_path / "exports")
    document = json.loads((target / "export.json").read_text())
    assert document["format"] == "mailroom-export/1" and document["address"] == JO
    relations = {t["id"]: t["relation"] for t in document["tickets"]}
    assert relations == {cases.jo_first: "requester", cases.jo_second: "requester",
                         cases.sam_with_jo: "participant"}
    assert document["counts"] == {"tickets": 3, "messages": _messages(app),
                                  "inbound_raw": 3, "outbound_raw": 2, "attachments": 4}
    inbound = sorted((target / e["file"]).read_bytes() for e in document["inbound_raw"])
    assert inbound == sorted(cases.inbound_from_jo)
    for entry in document["outbound_raw"]:
        assert entry["kind"] == "acknowledgement" and entry["to"] == [JO]
        assert b"To: Jo Teacher <jo@school.example>" in (target / entry["file"]).read_bytes()
    files = {Path(a["file"]).name.split("-", 1)[1]: (target / a["file"]).read_bytes()
             for a in document["attachments"]}
    assert files == {"jo smith.png": PRIVATE, "screenshot.png": SHARED, "same.png": SHARED,
                     "from jo.png": IN_REPLY}
    first = next(t for t in document["tickets"] if t["id"] == cases.jo_first)
    assert first["escalations"][0]["context"].startswith(JO_NAME)
    theirs = [m["theirs"] for m in first["messages"]]
    assert theirs.count(True) == 2 and False in theirs  # theirs, the ack; the notification
    assert (target / "README.txt").read_text().startswith("Data held by Test Helpline")
    assert oct(target.stat().st_mode & 0o777) == "0o700"


def _messages(app: App) -> int:
    """Every message in the database: all are on Jo's three cases."""
    with app.sessions() as session:
        count = session.execute(select(func.count()).select_from(Message)).scalar_one()
    assert count >= 3 * 3 + 1  # each case: the mail, its acknowledgement, a notification
    return int(count)


# --- erase -------------------------------------------------------------------------


def test_erase_leaves_no_trace_and_keeps_statistics(app: App, cases: Cases) -> None:
    before = comparable(build_report(app, NOW_QUARTER))
    assert before["cases"]["opened"] == 3 and before["escalation_total"]["opened"] == 1
    result = erase_requester(app, JO, actor="admin:test")
    assert result.tickets == [f"HL-{cases.jo_first:06d}", f"HL-{cases.jo_second:06d}"]
    assert result.other_tickets == [f"HL-{cases.sam_with_jo:06d}"]
    assert result.placeholder.startswith("erased-") and result.placeholder.endswith(".invalid")
    assert _everything_mentioning(app, [JO, JO_NAME, "Jo smith", "class chat"]) == []
    assert comparable(build_report(app, NOW_QUARTER)) == before
    _assert_audited(app, result.fingerprint)


def _assert_audited(app: App, fingerprint: str) -> None:
    with app.sessions() as session:
        events = list(session.execute(select(Event).where(
            Event.action == "requester.erased")).scalars())
    assert len(events) == 4  # one per ticket, one for the request
    assert fingerprint == erasure_fingerprint(app.settings, JO)
    assert all(e.detail["fingerprint"] == fingerprint for e in events)
    assert all(e.actor == "admin:test" for e in events)


def test_erase_deletes_unshared_blobs_and_keeps_other_cases(app: App, cases: Cases) -> None:
    result = erase_requester(app, JO, actor="admin:test")
    assert result.blobs == 2
    for gone in (PRIVATE, IN_REPLY):
        assert not app.blobs.path_for(hashlib.sha256(gone).hexdigest()).exists()
    assert app.blobs.exists(hashlib.sha256(SHARED).hexdigest())  # Sam's copy is still stored
    with app.sessions() as session:
        sams = session.execute(select(Message).where(
            Message.message_id == "sam-1@other.example")).scalar_one()
        jos = session.execute(select(Message).where(
            Message.ticket_id == cases.sam_with_jo, Message.sender == result.placeholder)
        ).scalar_one()
        assert (jos.text, jos.subject, jos.sender_name) == (None, "", None)
        assert sams.text.startswith("My colleague is in Cc")
        assert sams.recipients["cc"] == [result.placeholder]
        inbound = session.execute(select(InboxItem).where(
            InboxItem.message_pk == sams.id)).scalar_one()
        assert inbound.raw is None  # it named Jo in its Cc header
        attachment = session.execute(select(AttachmentRow).where(
            AttachmentRow.message_pk == sams.id)).scalar_one()
        assert attachment.stored and attachment.filename == "same.png"
        cc = session.execute(select(Participant).where(
            Participant.ticket_id == cases.sam_with_jo, Participant.role == "cc")).scalar_one()
        assert (cc.address, cc.name) == (result.placeholder, None)


def test_after_erasure_nothing_is_found(app: App, cases: Cases, tmp_path: Path) -> None:
    erase_requester(app, JO, actor="admin:test")
    again = erase_requester(app, JO, actor="admin:test")
    assert (again.tickets, again.other_tickets, again.blobs) == ([], [], 0)
    document = json.loads((export_requester(app, JO, tmp_path) / "export.json").read_text())
    assert document["counts"] == {"tickets": 0, "messages": 0, "inbound_raw": 0,
                                  "outbound_raw": 0, "attachments": 0}


def test_queued_mail_of_their_case_is_cancelled(app: App) -> None:
    send(app, attachment=PRIVATE, filename="x.png", sender=JO, name=JO_NAME, subject="Help")
    result = erase_requester(app, JO, actor="admin:test")
    assert result.cancelled == 2  # the acknowledgement and the notification, not yet sent
    with app.sessions() as session:
        queued = list(session.execute(select(OutboxItem)).scalars())
    assert {(o.kind, o.status, o.rendered) for o in queued} == {
        ("acknowledgement", "failed", None), ("notification", "failed", None)}
    assert send_due(app) == {}


# --- command line --------------------------------------------------------------------


def test_cli_export_and_erase(app: App, cases: Cases, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    config = ["--config", str(app.settings.source)]
    assert run_cli([*config, "export", "--requester", JO, "--out", str(tmp_path), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert Path(exported["path"]).parent == tmp_path and exported["tickets"] == 3
    assert run_cli([*config, "erase", "--requester", JO]) == 2  # no terminal: needs --yes
    assert "--yes" in capsys.readouterr().err
    assert run_cli([*config, "erase", "--requester", JO, "--yes", "--json"]) == 0
    erased = json.loads(capsys.readouterr().out)
    assert len(erased["tickets"]) == 2
    assert erased["fingerprint"] == erasure_fingerprint(app.settings, JO)
    assert run_cli([*config, "erase", "--requester", "not-an-address", "--yes"]) == 1


def _everything_mentioning(app: App, needles: list[str]) -> list[str]:
    """``table.column`` of every value in the database that contains a needle (any case)."""
    lowered = [n.lower() for n in needles]
    found = []
    with app.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()).mappings():
                for column, value in row.items():
                    text = _as_text(value).lower()
                    found += [f"{table.name}.{column}" for n in lowered if n in text]
    return found


def _as_text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def test_longer_addresses_that_contain_theirs_are_left_alone(app: App) -> None:
    others = ["jo@school.example.org", "bigjo@school.example"]
    send(app, attachment=PRIVATE, filename="x.png", sender=others[0], name="Jo Other",
         cc=[others[1]], subject=f"About {others[1]}", body=f"Ask {others[1]}.\n")
    before = _everything_mentioning(app, others)
    erase_requester(app, JO, actor="admin:test")
    assert _everything_mentioning(app, others) == before
    with app.sessions() as session:
        [ticket] = session.execute(select(Ticket)).scalars()
        [inbound] = session.execute(select(InboxItem).where(
            InboxItem.message_pk.is_not(None))).scalars()
    assert ticket.requester == others[0] and inbound.raw is not None
