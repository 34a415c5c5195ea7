"""A Message-ID already stored does not make a message a duplicate: only the same
message is one (the same bytes, or the same but for what servers add on the way).
A different message under a taken id is a message and a case of its own, answered
like any other; replies naming the id keep threading to the first."""

from __future__ import annotations

import json
import smtplib

import pytest
from sqlalchemy import delete, select

from mailroom.app import App
from mailroom.cli.main import main
from mailroom.pipeline import process_inbox
from mailroom.store.inbox import store_raw
from mailroom.store.models import InboxRaw, Message, OutboxItem
from tests.factories import deliver, inbox_rows, mail, ticket_of, tickets
from tests.integration.test_limits import recipients, requesters_answered
from tests.integration.test_smtp_door import HELPLINE, start_door

TAKEN = "case@school.example"
FIRST = mail(sender="jo@school.example", message_id=TAKEN)
SECOND = mail(sender="sam@other.example", name="Sam Youth", message_id=TAKEN,
              subject="Threats in a group chat", body="A pupil is threatened in a chat.\n")
ON_THE_WAY = (b"Return-Path: <jo@school.example>\r\nDelivered-To: helpline@helpline.example\r\n"
              b"X-Original-To: helpline@helpline.example\r\n"
              b"Received: from mx.school.example by mx.helpline.example; "
              b"Mon, 2 Mar 2026 10:00:02 +0000\r\n"
              b"Authentication-Results: mx.helpline.example; dkim=pass header.d=school.example\r\n"
              b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=helpline.example; s=arc; b=xyz\r\n"
              b"Received-SPF: pass (helpline.example: domain of school.example)\r\n"
              b"X-Spam-Status: No, score=-0.1\r\n")


def through_the_door(app: App, *messages: tuple[str, bytes]) -> None:
    """Deliver each (envelope sender, message) over SMTP; each must get 250."""
    door = start_door(app)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            for sender, raw in messages:
                assert client.sendmail(sender, [HELPLINE], raw) == {}
    finally:
        door.stop()


def shown(app: App, capsys: pytest.CaptureFixture[str], reference: str) -> dict:  # type: ignore[type-arg]
    """``mailroom tickets show REF --json``, as an admin sees it."""
    assert main(["--config", str(app.settings.var_dir.parent / "mailroom.toml"),
                 "tickets", "show", reference, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_a_different_message_under_a_taken_id_is_a_case_of_its_own(  # type: ignore[no-untyped-def]
    app, capsys: pytest.CaptureFixture[str]
) -> None:
    through_the_door(app, ("jo@school.example", FIRST), ("sam@other.example", SECOND))
    keys = [row.dedup_key for row in inbox_rows(app)]
    assert keys[0] == f"mid:{TAKEN}" and keys[1].startswith("reused:") and len(keys) == 2
    assert process_inbox(app) == {"created": 2}
    first, second = (shown(app, capsys, t.reference or "") for t in tickets(app))
    assert (first["requester"], second["requester"]) == ("jo@school.example", "sam@other.example")
    sams = second["messages"][0]
    assert sams["message_id"] is None and "reused-message-id" in sams["flags"]
    assert sams["text"].startswith("A pupil is threatened")
    assert first["messages"][0]["message_id"] == TAKEN
    assert "reused-message-id" not in first["messages"][0]["flags"]
    assert requesters_answered(app) == {"jo@school.example", "sam@other.example"}


@pytest.mark.parametrize("copy", [
    FIRST,
    ON_THE_WAY + FIRST,
    (ON_THE_WAY + FIRST).replace(b"\r\n", b"\n"),
], ids=["the-same-bytes", "relayed-with-trace-fields", "from-a-maildir-with-lf"])
def test_the_same_message_again_is_one_message(app, copy: bytes) -> None:  # type: ignore[no-untyped-def]
    through_the_door(app, ("jo@school.example", FIRST))
    again = store_raw(app.door_sessions, copy, door="imap", door_ref="INBOX:1:9")
    assert again.duplicate and len(inbox_rows(app)) == 1
    assert process_inbox(app) == {"created": 1}
    assert recipients(app).count("jo@school.example") == 1  # one acknowledgement


def test_the_reused_message_again_is_a_duplicate_in_turn(app) -> None:  # type: ignore[no-untyped-def]
    through_the_door(app, ("jo@school.example", FIRST), ("sam@other.example", SECOND),
                     ("sam@other.example", ON_THE_WAY + SECOND))
    assert len(inbox_rows(app)) == 2
    assert process_inbox(app) == {"created": 2}
    assert deliver(app, SECOND) == "duplicate" and len(tickets(app)) == 2


def test_replies_naming_the_id_thread_to_the_first(app) -> None:  # type: ignore[no-untyped-def]
    assert deliver(app, FIRST) == "created" and deliver(app, SECOND) == "created"
    reply = mail(sender="jo@school.example", message_id="more@school.example",
                 subject="Re: Fake account of our head teacher", in_reply_to=TAKEN,
                 references=[TAKEN])
    assert deliver(app, reply) == "threaded"
    assert ticket_of(app, "more@school.example") == ticket_of(app, TAKEN) == tickets(app)[0].id


def test_a_forged_copy_of_our_outgoing_message_id_is_kept_never_answered(app) -> None:  # type: ignore[no-untyped-def]
    """Someone sends a message under the Message-ID of our acknowledgement: it is not a
    duplicate of it (it is not stored as that), nor dropped. Our own id makes it our
    mail looping back: kept on the case it names, answered by nobody."""
    assert deliver(app, FIRST) == "created"
    with app.sessions() as session:
        ours = session.execute(select(OutboxItem.message_id).where(
            OutboxItem.kind == "acknowledgement")).scalar_one()
    forged = mail(sender="mallory@evil.example", message_id=ours, subject="Re: your case",
                  in_reply_to=TAKEN, body="Please send us the screenshots again.\n")
    through_the_door(app, ("mallory@evil.example", forged))
    assert process_inbox(app) == {"loop": 1}
    with app.sessions() as session:
        kept = session.execute(select(Message).where(Message.sender == "mallory@evil.example")
                               ).scalar_one()
    assert kept.message_id is None and kept.kind == "loop"
    assert "reused-message-id" in kept.flags and kept.ticket_id == tickets(app)[0].id
    assert "mallory@evil.example" not in recipients(app)


def test_when_the_first_message_is_erased_a_newcomer_under_its_id_is_taken_for_it(  # type: ignore[no-untyped-def]
    app
) -> None:
    """Nothing is left to compare with: an erased person's mail must not come back."""
    first = store_raw(app.sessions, FIRST, door="smtp")
    with app.sessions.begin() as session:
        session.execute(delete(InboxRaw).where(InboxRaw.inbox_id == first.inbox_id))
    again = store_raw(app.sessions, ON_THE_WAY + SECOND, door="smtp")
    assert again.duplicate and again.inbox_id == first.inbox_id
