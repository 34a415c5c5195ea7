"""Safeguarding by file as well as by case, on both databases: the hash blocklist.

What people receive is read from the ``.eml`` files the file transport writes
once the outbox has sent them (``send_due``), never from the queue alone.
"""

from __future__ import annotations

import email
import hashlib
import os
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailroom.app import App
from mailroom.cases.safeguarding import withhold_case_files
from mailroom.cli.main import main
from mailroom.sending.sender import send_due
from mailroom.store.models import AttachmentRow, BlockedHash, Event, Message, OutboxItem, Ticket
from tests.factories import deliver, mail
from tests.integration.test_practitioner import outbox, plain_body, practitioner_reply
from tests.integration.test_safeguarding import with_attachment

URL = "https://www.tiktok.com/@fakehead"
HEAD = "head@other-school.example"
OFFICER = "pc.jones@police.example"
PRACTITIONER = "anna@helpline.example"


def image(label: str) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + label.encode() + os.urandom(1024)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- helpers that read like the domain ----------------------------------------------------


def report(app: App, *, sender: str = "teacher@school.example", body: str = f"Fake: {URL}\n",
           files: tuple[bytes, ...] = (), subject: str = "Fake account", **kwargs: object) -> int:
    """A professional writes in with these files attached; the case's id."""
    raw = mail(sender=sender, subject=subject, body=body, **kwargs)  # type: ignore[arg-type]
    for number, data in enumerate(files, 1):
        raw = with_attachment(raw, data=data, filename=f"Amy Year9 {number}.png")
    deliver(app, raw)
    with app.sessions() as session:
        newest = select(Ticket.id).order_by(Ticket.id.desc()).limit(1)
        return int(session.execute(newest).scalar_one())


def delivered(app: App) -> list[EmailMessage]:
    """Send what is queued, then read every ``.eml`` the file transport wrote."""
    send_due(app)
    found = []
    for path in sorted(app.settings.sent_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def received_by(mails: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in mails if address in m["X-Mailroom-Rcpt-To"]]


def carries(msg: EmailMessage, data: bytes) -> bool:
    return any(part.get_content() == data for part in msg.iter_attachments())


def ticket(app: App, ticket_id: int) -> Ticket:
    with app.sessions() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        return found


def blocklist(app: App) -> list[BlockedHash]:
    with app.sessions() as session:
        return list(session.execute(select(BlockedHash).order_by(BlockedHash.id)).scalars())


def events(app: App, action: str) -> list[Event]:
    with app.sessions() as session:
        return list(session.execute(
            select(Event).where(Event.action == action).order_by(Event.id)).scalars())


def attachment_rows(app: App, data: bytes) -> list[AttachmentRow]:
    with app.sessions() as session:
        return list(session.execute(select(AttachmentRow).where(
            AttachmentRow.sha256 == sha256(data)).order_by(AttachmentRow.id)).scalars())


def notifications_of(mails: list[EmailMessage], ticket_id: int) -> list[EmailMessage]:
    return [m for m in received_by(mails, PRACTITIONER)
            if f"[Helpline #{ticket_id}]" in m["Subject"]]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``mailroom --config <the test's config> ARGS…``: (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["--config", str(tmp_path / "mailroom.toml"), *args])
        out, err = capsys.readouterr()
        return status, out, err

    return run


# --- the same bytes, another case ----------------------------------------------------------


def test_the_same_image_is_withheld_in_an_unrelated_case_without_keywords(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()  # the shipped keyword list and store_illegal_attachments = false
    picture = image("abuse")
    first = report(app, body="A pupil was sent indecent images, one is attached.\n",
                   files=(picture,))
    second = report(app, sender=HEAD, name="Sam Head", body=f"A fake account: {URL}\n",
                    files=(picture,))
    assert ticket(app, first).category == "illegal_images"
    flagged = ticket(app, second)
    assert flagged.category is None and {"illegal", "listed-file"} <= set(flagged.flags)
    [event] = events(app, "ticket.flagged")
    assert (event.ticket_id, event.detail["reason"], event.detail["files"]) == (
        second, "listed-file", [sha256(picture)])
    [entry] = blocklist(app)
    assert (entry.sha256, entry.md5, entry.source, entry.ticket_id, entry.added_by) == (
        sha256(picture), md5(picture), "case", first, "system")
    rows = attachment_rows(app, picture)
    assert [(r.stored, r.md5) for r in rows] == [(False, md5(picture))] * 2
    assert all(r.filename.startswith("withheld-") for r in rows)  # "Amy Year9" is gone
    assert not app.blobs.exists(sha256(picture))
    mails = delivered(app)
    assert mails and not any(carries(m, picture) for m in mails)
    [notice] = notifications_of(mails, second)
    assert "matches the list of known illegal images" in plain_body(notice)


def test_a_file_listed_from_a_case_flags_the_cases_that_already_hold_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    picture = image("earlier")
    earlier = report(app, sender=HEAD, files=(picture,))
    assert not ticket(app, earlier).flags
    report(app, body="This is CSAM, please help.\n", files=(picture,))
    assert "listed-file" in ticket(app, earlier).flags
    [notice] = notifications_of(delivered(app), earlier)  # queued before, sent after
    assert not carries(notice, picture)
    assert "matches the list of known illegal images" in plain_body(notice)


def test_a_case_flagged_only_by_a_listed_file_does_not_list_its_other_files(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(safeguarding={"store_illegal_attachments": True})
    picture, logo = image("abuse"), image("school logo")
    report(app, body="indecent images attached\n", files=(picture,))
    report(app, sender=HEAD, files=(picture, logo))  # flagged by the picture
    assert [e.sha256 for e in blocklist(app)] == [sha256(picture)]
    third = report(app, sender="office@third.example", files=(logo,))
    assert not ticket(app, third).flags  # the logo did not spread the list
    [notice] = notifications_of(delivered(app), third)
    assert carries(notice, logo)


# --- imported lists ---------------------------------------------------------------------------


def test_an_imported_md5_matches_and_mail_queued_before_goes_without_the_file(
    make_app, cli, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    app = make_app()
    picture, other = image("known to the hotline"), image("unrelated")
    queued = report(app, files=(picture,))  # its notification is queued with the picture
    listing = tmp_path / "hotline.csv"
    listing.write_text(f"MD5,source\n{md5(picture).upper()},hotline list 2026-11\n"
                       f"{sha256(other)}\nnot a hash\n{md5(picture)[:30]}\n")
    status, out, err = cli("hashes", "import", str(listing))
    assert status == 1, err
    assert out.splitlines()[0] == f"{listing}: 2 added, 0 already listed, 2 rejected"
    assert "line 4: rejected: not a hexadecimal hash" in out
    assert "line 5: rejected: 30 hex digits" in out
    assert "cases flagged illegal (they hold a listed file): HL-000001" in out
    assert err.count("\n") == 1 and err.startswith(f"mailroom: 2 line(s) of {listing} rejected")
    assert "listed-file" in ticket(app, queued).flags
    mails = delivered(app)
    [notice] = notifications_of(mails, queued)
    assert not carries(notice, picture) and not any(carries(m, picture) for m in mails)
    assert ("the attachment listed above was not sent with this email: it matches the list of "
            "known illegal images") in " ".join(plain_body(notice).split())
    later = report(app, sender=HEAD, files=(picture,))
    assert "listed-file" in ticket(app, later).flags
    imported = [e for e in blocklist(app) if e.source == "import"]
    assert {(e.md5, e.note) for e in imported if e.md5} == {(md5(picture), "hotline list 2026-11")}
    assert cli("hashes", "import", str(listing))[1].startswith(
        f"{listing}: 0 added, 2 already listed")
    [audit, _] = events(app, "hashes.imported")
    assert audit.actor.startswith("cli") and audit.detail["rejected"] == [4, 5]


def test_hashes_list_and_an_audited_removal(make_app, cli) -> None:  # type: ignore[no-untyped-def]
    import json

    app = make_app()
    picture = image("false positive")
    report(app, body="Our CSAM awareness training slides, attached.\n", files=(picture,))
    status, out, _ = cli("hashes", "list", "--json")
    [entry] = json.loads(out)
    assert status == 0 and (entry["case"], entry["source"], entry["md5"]) == (
        "HL-000001", "case", md5(picture))
    assert cli("hashes", "list")[1].splitlines()[1].startswith(sha256(picture))
    status, out, _ = cli("hashes", "remove", md5(picture), "--reason", "training slides")
    assert status == 0 and out.startswith(f"removed {sha256(picture)}")
    [removed] = events(app, "hashes.removed")
    assert removed.ticket_id == 1 and removed.actor.startswith("cli")
    assert removed.detail["reason"] == "training slides"
    assert cli("hashes", "remove", md5(picture))[0:3:2] == (
        1, f"mailroom: {md5(picture)} is not on the blocklist\n")
    assert cli("hashes", "remove", "xyz")[0] == 2
    assert cli("hashes", "import", "/no/such/file.csv")[0:3:2] == (
        1, "mailroom: no such file: /no/such/file.csv\n")
    assert cli("hashes", "list")[1] == "no hashes listed\n"
    later = report(app, sender=HEAD, files=(picture,))  # only future mail changes
    assert not ticket(app, later).flags
    assert carries(notifications_of(delivered(app), later)[0], picture)


# --- decided again when the outbox sends -------------------------------------------------------


def test_escalation_with_evidence_never_carries_a_listed_file(make_app, cli) -> None:  # type: ignore[no-untyped-def]
    app = make_app(safeguarding={"store_illegal_attachments": True})  # bytes kept, as before
    picture, screenshot = image("abuse"), image("screenshot of the fake account")
    illegal = report(app, body="indecent images of a pupil, attached\n", files=(picture,))
    ordinary = report(app, sender=HEAD, body=f"Fake account: {URL}\n", files=(screenshot,))
    # The listed file reaches an ordinary case by a route that carries no flag with it (a
    # merge does carry it, see test_merging): the blocklist alone must hold it back.
    with app.sessions.begin() as session:
        session.execute(update(Message).where(Message.ticket_id == illegal)
                        .values(ticket_id=ordinary))
    assert ticket(app, ordinary).flags == []
    status, _, err = cli("escalate", f"HL-{ordinary:06d}", "--platform", "tiktok", "--evidence")
    assert status == 0, err
    with app.sessions() as session:
        row = session.execute(select(OutboxItem).where(OutboxItem.kind == "escalation")).scalar()
    assert row is not None and not row.files  # nothing queued with it
    [opened] = events(app, "escalation.opened")
    assert opened.detail["attachments"] == 0 and opened.detail["withheld"] == 2
    assert "listed-file" in ticket(app, ordinary).flags
    app.clock.now = datetime.now(UTC) + timedelta(minutes=1)  # the command queued on real time
    [escalation] = received_by(delivered(app), "tiktok-escalations@example.org")
    assert list(escalation.iter_attachments()) == []
    assert picture not in escalation.as_bytes()


@pytest.mark.parametrize("kind", ["escalation", "relay"])
def test_a_file_listed_after_queueing_stays_behind_at_send_time(make_app, kind: str) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    screenshot = image("listed later")
    case = report(app, files=(screenshot,) if kind == "escalation" else ())
    if kind == "escalation":
        with app.sessions.begin() as session:
            from mailroom.cases.escalations import open_escalation

            open_escalation(app, session, session.get(Ticket, case), "tiktok", urls=None,  # type: ignore[arg-type]
                            context=None, actor=PRACTITIONER, evidence=True)
    else:
        [notice] = outbox(app, "notification")
        deliver(app, with_attachment(practitioner_reply(notice, "Hi Jo, see attached.\n"),
                                     data=screenshot, filename="advice.png"))
    [queued] = [r for r in _rows(app) if r.kind == kind]
    assert queued.files and queued.files[0]["sha256"] == sha256(screenshot)
    with app.sessions.begin() as session:  # listed after queueing, by an import
        session.add(BlockedHash(md5=md5(screenshot), source="import", added_at=app.now(),
                                added_by="cli:admin"))
    sent = [m for m in delivered(app) if m["Message-ID"] == f"<{queued.message_id}>"]
    assert len(sent) == 1 and list(sent[0].iter_attachments()) == []
    assert "matches the list of known illegal images" in " ".join(plain_body(sent[0]).split())


def _rows(app: App) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


def test_send_time_follows_a_merge_to_the_live_case(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    screenshot = image("ordinary")
    merged = report(app, files=(screenshot,))
    live = report(app, sender=HEAD, body="child abuse images were shared\n")
    with app.sessions.begin() as session:  # the queued mail still names the merged case
        session.execute(update(Ticket).where(Ticket.id == merged).values(merged_into=live))
    [notice] = notifications_of(delivered(app), merged)
    assert not carries(notice, screenshot)
    assert "possibly holding illegal images" in " ".join(plain_body(notice).split())


# --- a police officer's sextortion report ------------------------------------------------------


def test_a_police_officers_sextortion_report(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(signposting={"emergency_number": "112", "police_number": "0300 123 1212"})
    picture = image("sextortion")
    case = report(app, sender=OFFICER, name="PC Jones", subject="Boy, 15, being blackmailed",
                  body=("I am investigating a sextortion case. The attached image was sent to "
                        "a 15-year-old boy, who is told to pay or it goes to his school.\n"),
                  files=(picture,))
    found = ticket(app, case)
    assert found.category == "sextortion" and "illegal" in found.flags
    mails = delivered(app)
    assert not any(carries(m, picture) for m in mails)
    [notice] = received_by(mails, PRACTITIONER)
    assert list(notice.iter_attachments()) == []
    assert ("1 attachment was withheld from this email: the case may involve illegal images"
            in " ".join(plain_body(notice).split()))
    to_officer = {m["Subject"]: plain_body(m) for m in received_by(mails, OFFICER)}
    assert len(to_officer) == 1  # acknowledgement and signposting share the subject
    acknowledgement, signposting = (plain_body(m) for m in received_by(mails, OFFICER))
    if "sextortion" in acknowledgement:
        acknowledgement, signposting = signposting, acknowledgement
    assert "call the police now on 112" in acknowledgement
    text = " ".join(signposting.split())
    for words in ("sounds like sextortion", "Do not pay", "Do not delete the messages",
                  "Do not forward, copy, download or screenshot the images",
                  "call the police now on 112", "Report it to the police on 0300 123 1212",
                  "Report Remove", "Take It Down"):
        assert words in text, words
    assert "999" not in text and "child sexual abuse. Please read" not in text
    [entry] = blocklist(app)
    assert entry.sha256 == sha256(picture) and entry.origin == "case in category sextortion"


# --- by hand: the function #withhold calls ------------------------------------------------------


def test_withhold_case_files_retroactively(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    first, second = image("one"), image("two")
    case = report(app, files=(first, second))
    other = report(app, sender=HEAD, files=(first,))
    with app.sessions.begin() as session:
        found = session.get(Ticket, case)
        assert found is not None
        done = withhold_case_files(app.settings, app.blobs, session, found, clock=app.clock,
                                   actor=PRACTITIONER, message_pk=None, note="seen by Anna")
    assert (done.reference, done.files, done.listed, done.dropped, done.queued_mail,
            done.other_cases) == ("HL-000001", 2, 2, 2, 1, ("HL-000002",))
    assert set(ticket(app, case).flags) == {"illegal"}
    assert "listed-file" in ticket(app, other).flags
    entries = blocklist(app)
    assert {(e.source, e.origin, e.note, e.added_by, e.ticket_id) for e in entries} == {
        ("command", "#withhold", "seen by Anna", PRACTITIONER, case)}
    assert {e.sha256 for e in entries} == {sha256(first), sha256(second)}
    assert not app.blobs.exists(sha256(first)) and not app.blobs.exists(sha256(second))
    [event] = events(app, "files.withheld")
    assert event.actor == PRACTITIONER and event.detail["queued_mail"] == 1
    mails = delivered(app)
    assert not any(carries(m, first) or carries(m, second) for m in mails)
    assert len(notifications_of(mails, case)) == 1
    with app.sessions.begin() as session:  # again: nothing more to do
        again = withhold_case_files(app.settings, app.blobs, session,
                                    session.get(Ticket, case),  # type: ignore[arg-type]
                                    clock=app.clock, actor=PRACTITIONER)
    assert (again.listed, again.dropped) == (0, 0)


def test_a_practitioner_category_lists_the_case_files(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(safeguarding={"store_illegal_attachments": True})
    picture = image("judged by a practitioner")
    report(app, files=(picture,))
    [notice] = outbox(app, "notification")
    deliver(app, practitioner_reply(notice, "#category sextortion\n#note\n"))
    [entry] = blocklist(app)
    assert (entry.sha256, entry.origin) == (sha256(picture), "case in category sextortion")
    assert app.blobs.exists(sha256(picture))  # the settings keep the bytes
    later = report(app, sender=HEAD, files=(picture,))
    assert "listed-file" in ticket(app, later).flags
