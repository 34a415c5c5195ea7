"""Escalations to platforms (SPEC section 7) on a real database, both backends.

A professional reports a fake TikTok account; the case is escalated; TikTok's
address gets a mail with the URLs and a signed Reply-To; the scheduler chases
a platform that does not answer (``mailroom tick --now`` in a subprocess moves
time across a weekend and a holiday) until the escalation is ``no_response``;
a platform that answers is ``responded``, its case number kept, the
practitioners told. Outbound mail is read from the outbox rows' bytes.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cases.escalations import (
    escalation_for_message,
    follow_up_due,
    handle_platform_reply,
    open_escalation,
    outcome_target,
    record_outcome,
)
from mailroom.cases.incoming import Facts, Incoming
from mailroom.errors import MailroomError
from mailroom.intake.classify import classify
from mailroom.intake.message import parse_message, parse_mime
from mailroom.outbox.rendered import outgoing_bytes
from mailroom.pipeline import process_item, speaking_of
from mailroom.store.inbox import store_raw
from mailroom.store.models import Escalation, Event, InboxItem, Message, OutboxItem, Ticket
from tests.factories import PRACTITIONERS, REPO, FixedClock, as_sent, mail

TIKTOK = "tiktok-escalations@example.org"
TEACHER = "jo.teacher@stmarys-school.example"
FAKE = "https://www.tiktok.com/@fakehead/video/7300000000000000001"
SHORT = "https://vm.tiktok.com/ZMabc123/"
CASE_BODY = f"Someone made a fake account of our head teacher:\n{FAKE}\nand {SHORT}\n"
THURSDAY = datetime(2026, 3, 5, 11, 0, tzinfo=UTC)  # London is on GMT: 11:00 local, open
HOLIDAY = "2026-03-09"  # the Monday after


# --- helpers that read like the domain -------------------------------------------------


def new_case(app: App, *, body: str = CASE_BODY, category: str | None = "impersonation",
             role: str | None = "teacher", raw: bytes | None = None) -> int:
    raw = raw or mail(sender=TEACHER, name="Jo Teacher", body=body,
                      subject="Jo Teacher here: fake account of our head")
    stored = store_raw(app.sessions, raw, door="file")
    assert process_item(app, stored.inbox_id) == "created"
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket).order_by(Ticket.id.desc())).scalars().first()
        assert ticket is not None
        ticket.category, ticket.role = category, role
        return ticket.id


def escalate(app: App, ticket_id: int, platform: str = "tiktok", **options: Any) -> int:
    options.setdefault("urls", None)
    options.setdefault("context", "The account copies our head teacher's photo.")
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return open_escalation(app, session, ticket, platform, actor="anna@helpline.example",
                               **options).id


def escalation(app: App, escalation_id: int) -> Escalation:
    with app.sessions() as session:
        row = session.get(Escalation, escalation_id)
        assert row is not None
        return row


def outbox(app: App, kind: str) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).where(OutboxItem.kind == kind)
                                    .order_by(OutboxItem.id)).scalars())


def sent_mail(item: OutboxItem) -> EmailMessage:
    parsed = email.message_from_bytes(outgoing_bytes(item) or b"", policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_of(item: OutboxItem) -> str:
    return str(sent_mail(item).get_body(("plain",)).get_content())


def notices(app: App, template_words: str) -> list[OutboxItem]:
    return [n for n in outbox(app, "notification") if template_words in n.subject]


def events(app: App, action: str) -> list[Event]:
    with app.sessions() as session:
        return list(session.execute(select(Event).where(Event.action == action)
                                    .order_by(Event.id)).scalars())


def from_platform(app: App, escalation_id: int, *, subject: str, body: str,
                  by_token: bool = True, headers: dict[str, str] | None = None,
                  in_reply_to: str | None = None) -> tuple[bytes, list[str]]:
    """A mail from TikTok answering the escalation (to its Reply-To, or by headers only)."""
    original = sent_mail(outbox(app, "escalation")[0])
    reply_to = original["Reply-To"].addresses[0].addr_spec
    parent = in_reply_to or escalation(app, escalation_id).message_id
    to = reply_to if by_token else "helpline@helpline.example"
    raw = mail(sender="safety-noreply@tiktok.example", name="TikTok Trust and Safety", to=to,
               subject=subject, body=body, in_reply_to=parent, references=[parent or ""],
               headers=headers)
    return raw, [to]


def answer(app: App, raw: bytes, rcpt_to: list[str]) -> int:
    """Deliver the platform's mail, then act on it as the wired pipeline will.

    ``handle_platform_reply`` is idempotent, so this stays right once the
    pipeline calls it itself.
    """
    stored = store_raw(app.sessions, raw, door="file", rcpt_to=rcpt_to)
    process_item(app, stored.inbox_id)
    with app.sessions.begin() as session:
        incoming = incoming_of(app, session, stored.inbox_id)
        handle_platform_reply(app, session, incoming)
        assert incoming.message is not None
        return incoming.message.id


def incoming_of(app: App, session: Any, inbox_id: int) -> Incoming:
    item = session.get(InboxItem, inbox_id)
    std = parse_mime(item.raw)
    parsed = parse_message(item.raw)
    facts = Facts(item=item, parsed=parsed, std=std,
                  classification=classify(std, envelope_sender=item.mail_from,
                                          our_domains=app.settings.domains,
                                          loop_token=app.settings.loop_token),
                  speaking=speaking_of(app.settings, item, parsed))
    return Incoming(facts, message=session.get(Message, item.message_pk)
                    if item.message_pk else None)


def tick(tmp_path: Any, now: str) -> dict[str, Any]:
    env = {**os.environ, "MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    done = subprocess.run([sys.executable, "-m", "mailroom", "tick", "--now", now, "--json"],
                          env=env, cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return dict(json.loads(done.stdout))


# --- the whole life, with `mailroom tick` moving time ------------------------------------


def test_unanswered_escalation_is_chased_then_no_response(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=FixedClock(THURSDAY), helpline={"holidays": [HOLIDAY]})
    eid = escalate(app, new_case(app))
    # Thursday + 3 business days: Friday, (weekend, holiday Monday) Tuesday, Wednesday.
    assert escalation(app, eid).next_follow_up_at == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)

    app.clock.now = datetime(2026, 3, 11, 10, 59, tzinfo=UTC)
    assert follow_up_due(app) == {}  # a minute early

    first_tick = tick(tmp_path, "2026-03-11T11:00:00Z")
    # follow-ups and SLA notices run before the outbox job: the acknowledgement, the new-case
    # notice, the escalation, its first follow-up and the notice that the case's first answer
    # is overdue all go out in this tick
    assert first_tick["send_outbox"] == {"sent": 5}
    assert first_tick["sla_notices"] == {"breached": 1}
    assert first_tick["escalation_follow_ups"] == {"follow_up": 1}
    [sent] = outbox(app, "escalation")
    assert sent.status == "sent" and sent.rcpt_to == [TIKTOK]
    assert FAKE in body_of(sent) and SHORT in body_of(sent)
    first = escalation(app, eid)
    assert first.follow_ups == 1 and first.status == "sent"
    assert first.next_follow_up_at == datetime(2026, 3, 16, 11, 0, tzinfo=UTC)  # over a weekend
    [chase] = outbox(app, "follow_up")
    assert chase.rcpt_to == [TIKTOK]
    assert sent_mail(chase)["In-Reply-To"] == f"<{sent.message_id}>"
    assert sent_mail(chase)["Subject"] == f"Re: {sent.subject}"
    assert sent_mail(chase)["Reply-To"] == sent_mail(sent)["Reply-To"]

    assert tick(tmp_path, "2026-03-16T11:00:00Z")["escalation_follow_ups"] == {"follow_up": 1}
    assert "reminder number 2" in body_of(outbox(app, "follow_up")[1])
    assert tick(tmp_path, "2026-03-19T11:00:00Z")["escalation_follow_ups"] == {
        "no_response": 1}
    final = escalation(app, eid)
    assert (final.status, final.follow_ups, final.next_follow_up_at) == ("no_response", 2, None)
    [notice] = notices(app, "No answer from TikTok")
    assert notice.rcpt_to == list(PRACTITIONERS)
    assert "TikTok has not answered the escalation of case HL-000001" in body_of(notice)
    assert sent_mail(notice)["Reply-To"].addresses[0].addr_spec.startswith(f"helpline+p-e{eid}-")
    assert [e.action for e in events(app, "escalation.follow_up")] == ["escalation.follow_up"] * 2
    assert len(events(app, "escalation.no_response")) == 1
    app.clock.now = datetime(2026, 4, 30, 11, 0, tzinfo=UTC)
    assert follow_up_due(app) == {}  # never chased again


def test_escalation_mail_headers(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    [item] = outbox(app, "escalation")
    msg = sent_mail(item)
    assert msg["To"].addresses[0].addr_spec == TIKTOK
    assert msg["From"].addresses[0].addr_spec == "helpline@helpline.example"
    assert msg["Reply-To"].addresses[0].addr_spec.startswith(f"helpline+x-e{eid}-")
    assert msg["Subject"] == "[Helpline #1] Escalation HL-000001: impersonation on TikTok"
    assert msg["Auto-Submitted"] is None and msg["Precedence"] is None
    assert msg["Message-ID"] == f"<{escalation(app, eid).message_id}>"
    assert msg["In-Reply-To"] is None and msg["References"] is None  # a thread of its own
    text = body_of(item)
    assert "reported to us by a teacher." in text
    assert "Category: impersonation" in text and "copies our head teacher's photo" in text
    assert [e.detail["urls"] for e in events(app, "escalation.opened")] == [[FAKE, SHORT]]


def test_escalation_never_names_the_requester(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    app.clock.now = escalation(app, eid).next_follow_up_at
    assert follow_up_due(app) == {"follow_up": 1}
    for item in (*outbox(app, "escalation"), *outbox(app, "follow_up")):
        raw = (outgoing_bytes(item) or b"").lower()
        for secret in (b"jo.teacher", b"jo teacher", b"stmarys", b"school.example"):
            assert secret not in raw, (item.kind, secret)


# --- the platform answers -------------------------------------------------------------------


def test_answer_with_case_number_in_subject(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    app.clock.advance(days=1)
    raw, rcpt = from_platform(
        app, eid, subject="Re: [Helpline #1] Escalation HL-000001 [Case ID: TT7731942]",
        body="Hello,\n\nWe reviewed the account and removed it for impersonation.\n\nTikTok\n")
    answered = answer(app, raw, rcpt)
    row = escalation(app, eid)
    assert (row.status, row.platform_ref, row.next_follow_up_at) == ("responded", "TT7731942",
                                                                     None)
    assert row.responded_at == app.clock.now
    [notice] = notices(app, "TikTok answered")
    assert notice.rcpt_to == list(PRACTITIONERS)
    text = body_of(notice)
    assert "removed it for impersonation" in text and "their case number TT7731942" in text
    assert sent_mail(notice)["Reply-To"].addresses[0].addr_spec.startswith(f"helpline+p-e{eid}-")
    [responded] = events(app, "escalation.responded")
    assert responded.message_pk == answered and responded.escalation_id == eid

    app.clock.advance(days=30)
    assert follow_up_due(app) == {}  # an answered escalation is not chased
    with app.sessions.begin() as session:
        target = outcome_target(session, session.get(Ticket, row.ticket_id))
        assert record_outcome(app, session, target, "removed", actor="anna@helpline.example")
    done = escalation(app, eid)
    assert (done.status, done.outcome, done.resolved_at) == ("resolved", "removed", app.now())
    assert events(app, "escalation.outcome")[0].detail["before"]["status"] == "responded"


def test_practitioner_reply_to_the_notice_is_not_the_platform(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    raw, rcpt = from_platform(app, eid, subject="Re: escalation", body="We removed it.\n")
    answer(app, raw, rcpt)
    [notice] = notices(app, "TikTok answered")
    reply = mail(sender="anna@helpline.example", subject="Re: notice", body="#outcome removed\n",
                 in_reply_to=notice.message_id, references=[notice.message_id])
    stored = store_raw(app.sessions, reply, door="file")
    with app.sessions() as session:
        facts = incoming_of(app, session, stored.inbox_id).facts
        assert escalation_for_message(session, facts) is None


def test_automatic_acknowledgement_keeps_the_chase_going(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    ack, rcpt = from_platform(
        app, eid, subject="We have received your report",
        body="Thank you for your report. Your report number: 4419203.\n"
             "This is an automated message, please do not reply.\n",
        headers={"Auto-Submitted": "auto-replied"})
    answer(app, ack, rcpt)
    row = escalation(app, eid)
    assert (row.status, row.platform_ref, row.responded_at) == ("sent", "4419203", None)
    assert notices(app, "TikTok answered") == [] and len(events(app, "escalation.acknowledged"))

    app.clock.now = row.next_follow_up_at
    assert follow_up_due(app) == {"follow_up": 1}
    [chase] = outbox(app, "follow_up")
    ack_id = email.message_from_bytes(ack, policy=default)["Message-ID"]
    assert sent_mail(chase)["In-Reply-To"] == ack_id  # threaded to their acknowledgement
    assert "(your case 4419203)" in sent_mail(chase)["Subject"]
    assert "your reference 4419203). Thank you for acknowledging it" in body_of(chase)

    # A person answers from their ticketing system: no token, only the thread's headers.
    human, rcpt = from_platform(app, eid, subject="Your report 4419203",
                                body="We have restricted the account.\n", by_token=False,
                                in_reply_to=chase.message_id)
    answer(app, human, rcpt)
    done = escalation(app, eid)
    assert (done.status, done.platform_ref, done.follow_ups) == ("responded", "4419203", 1)
    assert len(notices(app, "TikTok answered")) == 1


def test_late_answer_after_no_response(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=FixedClock(THURSDAY))
    eid = escalate(app, new_case(app))
    for _ in range(3):
        app.clock.now = escalation(app, eid).next_follow_up_at
        follow_up_due(app)
    assert escalation(app, eid).status == "no_response"
    raw, rcpt = from_platform(app, eid, subject="Re: escalation", body="Sorry, removed now.\n")
    answer(app, raw, rcpt)
    assert escalation(app, eid).status == "responded"
    assert events(app, "escalation.responded")[0].detail["before"] == "no_response"


def test_platform_gone_from_directory_is_no_response(app) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app))
    app.platforms = {k: v for k, v in app.platforms.items() if k != "tiktok"}
    app.clock.now = escalation(app, eid).next_follow_up_at
    assert follow_up_due(app) == {"no_response": 1}
    assert escalation(app, eid).status == "no_response"
    [notice] = notices(app, "No answer from tiktok")
    assert "Chasing stopped: the platform is no longer in the directory." in body_of(notice)


# --- which URLs, which files ----------------------------------------------------------------

SHORT_LINKS_BODY = (
    "Links: https://vm.tiktok.com/ZMabc123/ and https://m.facebook.com/story.php?id=42\n"
    "fb.watch/xYz12/ youtu.be/dQw4w9WgXcQ https://instagr.am/p/Cabc/\n"
    "https://www.google.co.uk/maps/place/x https://notfacebook.com/fake\n"
)
DEFAULT_URLS = {
    "tiktok": ["https://vm.tiktok.com/ZMabc123/"],
    "facebook": ["https://m.facebook.com/story.php?id=42", "https://fb.watch/xYz12/"],
    "youtube": ["https://youtu.be/dQw4w9WgXcQ"],
    "instagram": ["https://instagr.am/p/Cabc/"],
    "google": ["https://www.google.co.uk/maps/place/x"],
}


@pytest.mark.parametrize(("platform", "expected"), DEFAULT_URLS.items(), ids=DEFAULT_URLS)
def test_default_urls_from_short_links_and_country_domains(app, platform, expected) -> None:  # type: ignore[no-untyped-def]
    eid = escalate(app, new_case(app, body=SHORT_LINKS_BODY), platform)
    assert escalation(app, eid).urls == expected
    assert outbox(app, "escalation")[0].rcpt_to == [f"{platform}-escalations@example.org"]


def case_with_files(app: App, *, category: str | None, flags: list[str]) -> int:
    msg = email.message_from_bytes(mail(sender=TEACHER, body=CASE_BODY), policy=default)
    assert isinstance(msg, EmailMessage)
    msg.add_attachment(b"\x89PNG screenshot", maintype="image", subtype="png",
                       filename="Jo Teacher screenshot.PNG")
    msg.add_attachment(b"\x89PNG school crest", maintype="image", subtype="png",
                       filename="crest.png", disposition="inline", cid="<crest@school>")
    msg.add_attachment(b"MZ", maintype="application", subtype="octet-stream", filename="x.exe")
    ticket_id = new_case(app, category=category, raw=msg.as_bytes())
    with app.sessions.begin() as session:
        session.get(Ticket, ticket_id).flags = flags  # type: ignore[union-attr]
    return ticket_id


FILE_CASES = {
    "urls-only": (None, [], False, []),
    "evidence": (None, [], True, ["evidence-1.png"]),
    "illegal-category": ("illegal_images", [], True, []),
    "illegal-flag": ("bullying", ["illegal"], True, []),
}


@pytest.mark.parametrize(("category", "flags", "evidence", "files"), FILE_CASES.values(),
                         ids=FILE_CASES)
def test_attachments_follow_safeguarding(app, category, flags, evidence, files) -> None:  # type: ignore[no-untyped-def]
    escalate(app, case_with_files(app, category=category, flags=flags), evidence=evidence)
    [item] = outbox(app, "escalation")
    parts = list(as_sent(app, item).iter_attachments())
    assert [part.get_filename() for part in parts] == files
    assert [part.get_content() for part in parts] == [b"\x89PNG screenshot"] * len(files)
    assert ("We have not attached any files" in body_of(item)) is (not files)
    assert events(app, "escalation.opened")[0].detail["attachments"] == len(files)


REFUSALS = {
    "unknown-platform": ("myspace", None, "unknown platform 'myspace' (known: discord,"),
    "no-urls": ("youtube", None, "no YouTube URLs on case HL-000001"),
    "other-platform": ("tiktok", ["https://instagram.com/x"],
                       "is on Instagram, not TikTok: escalate"),
    "not-web": ("tiktok", ["ftp://tiktok.com/x"], "not a web (http or https) URL"),
}


@pytest.mark.parametrize(("platform", "urls", "message"), REFUSALS.values(), ids=REFUSALS)
def test_refusals_are_one_line_and_change_nothing(app, platform, urls, message) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_case(app)
    with pytest.raises(MailroomError) as error:
        escalate(app, ticket_id, platform, urls=urls)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert outbox(app, "escalation") == [] and events(app, "escalation.opened") == []


def test_duplicate_escalation_is_refused_but_new_urls_are_not(app) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_case(app)
    escalate(app, ticket_id)
    with pytest.raises(MailroomError, match="already escalated to TikTok"):
        escalate(app, ticket_id, urls=[SHORT])
    escalate(app, ticket_id, urls=["https://www.tiktok.com/@fakehead2"])
    assert len(outbox(app, "escalation")) == 2


def test_outcome_needs_a_platform_when_two_are_open(app) -> None:  # type: ignore[no-untyped-def]
    ticket_id = new_case(app, body=f"{FAKE}\nhttps://www.instagram.com/fakehead\n")
    escalate(app, ticket_id)
    instagram = escalate(app, ticket_id, "instagram")
    with app.sessions.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        with pytest.raises(MailroomError, match="name the platform"):
            outcome_target(session, ticket)
        target = outcome_target(session, ticket, "instagram")
        record_outcome(app, session, target, "declined", actor="anna@helpline.example")
    assert escalation(app, instagram).outcome == "declined"


# --- the job is safe to run twice, and concurrently --------------------------------------------


def test_follow_ups_run_concurrently_send_each_once(app) -> None:  # type: ignore[no-untyped-def]
    ids = [escalate(app, new_case(app, body=f"https://www.tiktok.com/@fake{i}\n"))
           for i in range(8)]
    app.clock.now = escalation(app, ids[0]).next_follow_up_at
    results: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda: results.append(follow_up_due(app)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.get("follow_up", 0) for r in results) == 8
    assert [escalation(app, i).follow_ups for i in ids] == [1] * 8
    assert len(outbox(app, "follow_up")) == 8
    assert follow_up_due(app) == {}
