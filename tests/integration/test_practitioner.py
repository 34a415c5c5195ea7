"""Practitioners working from their mail client (SPEC section 6), on a real database.

A professional writes in; the practitioners' notification carries the signed
``p`` Reply-To; the practitioner's reply (as real clients build it, top-posted
over the whole history) runs its command lines and is relayed to the
professional without history, commands or signature.
"""

from __future__ import annotations

import email
import re
import smtplib
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.addresses import TEAM, parse_reply_address, verify_binding
from mailroom.app import App
from mailroom.cases.commands import UNITS
from mailroom.cases.practitioner import relay_text
from mailroom.pipeline import process_inbox
from mailroom.sending.sender import send_due
from mailroom.sending.transports import SmtpTransport
from mailroom.store.models import Escalation, Event, Message, OutboxItem, Participant, Ticket
from tests.factories import as_sent, deliver, mail, tickets
from tests.integration.smtp_sink import SmtpSink, smtp_sink_fixture  # noqa: F401
from tests.integration.test_smtp_door import start_door

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "practitioner"
CLIENTS = ["outlook-plain", "outlook-html-only", "gmail", "gmail-html-only", "apple-mail",
           "thunderbird"]
HELPLINE = "helpline@helpline.example"
TEACHER = "teacher@school.example"
ANNA = "anna@helpline.example"
CASE_ID = "case@school.example"
CASE_BODY = ("Hello,\n\nParents are posting comments about me on Facebook: "
             "https://www.facebook.com/groups/123/posts/456\n\nWhat can I do?\n\nJo\n")
ANSWER = [
    "Hi Jo,",
    "I’m sorry to hear about the comments. Facebook removes posts that break its community "
    "standards, and I have looked at the group you sent us.",
    "Please take screenshots of the comments before you report them, and keep a note of the "
    "dates.",
    "I would also speak to your head teacher about a letter to parents.",
]
SIGN_OFF = "Kind regards, Test Helpline"
LEFTOVERS = ("#category", "wrote", "New case", "From:", "Anna", "Ben", "iPhone", "0344",
             "Practitioner", "Reply to this email to answer the requester")
AUTH_PASS = ("mx.helpline.example; dkim=pass (2048-bit key) header.d=helpline.example "
             "header.s=sel1; spf=pass smtp.mailfrom=helpline.example; "
             "dmarc=pass (p=reject) header.from=helpline.example")
AUTH_FAIL = "mx.helpline.example; dkim=none; spf=softfail smtp.mailfrom=helpline.example"


# --- helpers that read like the domain ---------------------------------------------------


def open_case(app: App, **kwargs: Any) -> EmailMessage:
    """The professional writes in; return the practitioners' notification."""
    deliver(app, mail(message_id=CASE_ID, subject="Comments about me on Facebook",
                      body=CASE_BODY, **kwargs))
    [notification] = outbox(app, "notification")
    return notification


def outbox(app: App, kind: str | None = None) -> list[EmailMessage]:
    """Queued outgoing mail (of one kind), parsed, oldest first."""
    return [as_sent(app, row) for row in outbox_rows(app) if kind in (None, row.kind)]


def outbox_rows(app: App) -> list[OutboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


def outbox_kinds(app: App) -> list[str]:
    return [row.kind for row in outbox_rows(app)]


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    return msg


def reply_address(notification: EmailMessage) -> str:
    return notification["Reply-To"].addresses[0].addr_spec


def bound_to(app: App, address: str) -> str | None:
    """Who a practitioner's reply address was issued to (a practitioner, or the team)."""
    s = app.settings
    token = parse_reply_address(address, local=s.local_part, domains=s.domains, secret=s.secret)
    assert token is not None and token.bound
    return next((who for who in (*s.practitioners, TEAM)
                 if verify_binding(token, s.secret, who)), None)


def client_reply(client: str, notification: EmailMessage) -> bytes:
    """A fixture reply, addressed to this notification's signed Reply-To."""
    text = (FIXTURES / f"{client}.eml").read_text(encoding="utf-8")
    text = text.replace("@@REPLY_TO@@", reply_address(notification))
    text = text.replace("@@NOTIFICATION_ID@@", notification["Message-ID"].strip("<>"))
    return text.replace("\n", "\r\n").encode("utf-8")


def practitioner_reply(notification: EmailMessage, body: str, *, sender: str = ANNA,
                       to: str | None = None, **kwargs: Any) -> bytes:
    return mail(sender=sender, name="Anna Smith", to=to or reply_address(notification),
                subject=f"Re: {notification['Subject']}", body=body,
                in_reply_to=notification["Message-ID"].strip("<>"), **kwargs)


def plain_body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def paragraphs(text: str) -> list[str]:
    """Paragraphs with their line wrapping undone (format=flowed is not unwrapped)."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def the_ticket(app: App) -> Ticket:
    [ticket] = tickets(app)
    return ticket


def inbound(app: App) -> list[Message]:
    with app.sessions() as session:
        return list(session.execute(select(Message).where(Message.direction == "in")
                                    .order_by(Message.id)).scalars())


def events(app: App, action: str | None = None) -> list[Event]:
    with app.sessions() as session:
        found = session.execute(select(Event).order_by(Event.id)).scalars()
        return [e for e in found if action in (None, e.action)]


def assert_nothing_ran(app: App) -> None:
    ticket = the_ticket(app)
    assert ticket.status == "open" and ticket.category is None and ticket.assignee is None
    assert outbox(app, "relay") == [] and outbox(app, "closure") == []
    assert ticket.first_response_at is None


# --- one reply per mail client -----------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENTS)
def test_client_reply_is_relayed_without_history_commands_or_signature(
    app: App, client: str
) -> None:
    notification = open_case(app)
    assert outbox_kinds(app) == ["acknowledgement", "notification"]
    assert deliver(app, client_reply(client, notification)) == "threaded"
    assert outbox_kinds(app) == ["acknowledgement", "notification", "relay"]
    [relay] = outbox(app, "relay")
    body = plain_body(relay)
    assert paragraphs(body)[:5] == [*ANSWER, SIGN_OFF], body
    assert not [word for word in LEFTOVERS if word in body], body
    html = relay.get_body(("html",))
    assert html is not None and "I’m sorry to hear" in html.get_content()
    assert not [word for word in LEFTOVERS if word in html.get_content()]
    assert relay["In-Reply-To"] == f"<{CASE_ID}>" and CASE_ID in relay["References"]
    assert relay["From"].addresses[0].addr_spec == HELPLINE
    assert [a.addr_spec for a in relay["To"].addresses] == [TEACHER]
    assert reply_address(relay).startswith("helpline+r-t1-")
    assert relay["Subject"] == "Re: [Helpline #1] Comments about me on Facebook"
    assert relay["Auto-Submitted"] is None
    assert list(relay.iter_attachments()) == []  # not Outlook's inline signature logo
    ticket = the_ticket(app)
    assert ticket.category == "reputation" and ticket.status == "waiting"
    assert ticket.first_response_at is not None
    assert [m.kind for m in inbound(app)] == ["requester", "practitioner"]


def test_the_notification_ends_with_help_for_every_command(app: App) -> None:
    lines = plain_body(open_case(app)).splitlines()
    help_lines = lines[lines.index("-- ") + 2:]  # after the separator and the first sentence
    assert len(help_lines) == len(UNITS)
    for line, unit in zip(help_lines, UNITS, strict=True):
        assert line.startswith(f"  {unit.syntax} ") and line.endswith(f"  {unit.description}")


def test_audit_trail_names_the_practitioner_and_the_reply(app: App) -> None:
    deliver(app, client_reply("outlook-plain", open_case(app)))
    practitioner_message = inbound(app)[1]
    trail = {e.action: e for e in events(app) if e.message_pk == practitioner_message.id}
    assert {"ticket.category", "message.relayed", "ticket.status"} <= set(trail)
    assert {e.actor for e in trail.values()} == {ANNA}
    assert trail["ticket.category"].detail == {"before": None, "after": "reputation"}
    assert trail["ticket.status"].detail == {"before": "open", "after": "waiting"}


def test_end_to_end_over_loopback_smtp(app: App, smtp_sink: SmtpSink) -> None:
    """Requester and practitioner through the SMTP door, relay through the SMTP sink."""
    app.transport_override = SmtpTransport("127.0.0.1", smtp_sink.port, security="none",
                                           timeout=5)
    door = start_door(app)
    try:
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.sendmail(TEACHER, [HELPLINE], mail(
                message_id=CASE_ID, subject="Comments about me on Facebook", body=CASE_BODY))
        assert process_inbox(app) == {"created": 1}
        assert send_due(app) == {"sent": 2}
        [notified] = [d for d in smtp_sink.wait_for(2) if ANNA in d.rcpt_tos]
        to_us = reply_address(notified.message)
        smtp_sink.clear()
        with smtplib.SMTP("127.0.0.1", door.port) as client:
            client.sendmail(ANNA, [to_us], client_reply("outlook-plain", notified.message))
        assert process_inbox(app) == {"threaded": 1}
    finally:
        door.stop()
    assert send_due(app) == {"sent": 1}
    [received] = smtp_sink.wait_for(1)
    assert received.rcpt_tos == (TEACHER,) and received.mail_from == HELPLINE
    relay = received.message
    assert relay["In-Reply-To"] == f"<{CASE_ID}>"
    assert paragraphs(plain_body(relay))[:5] == [*ANSWER, SIGN_OFF]
    assert the_ticket(app).category == "reputation"


# --- what is not relayed -----------------------------------------------------------------


def test_note_stays_internal(app: App) -> None:
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, "#note\nCalled the school: head is aware.\n"))
    assert outbox_kinds(app) == ["acknowledgement", "notification"]
    assert the_ticket(app).status == "open"
    assert (inbound(app)[1].text or "").endswith("Called the school: head is aware.")
    [note] = events(app, "note.added")
    assert note.actor == ANNA


COMMANDS_ONLY = {
    "bare": "#category threats\n#assign me\n",
    "with-sign-off": "#category threats\n#assign me\n\nKind regards,\nAnna\nPractitioner\n",
}


@pytest.mark.parametrize("body", COMMANDS_ONLY.values(), ids=COMMANDS_ONLY.keys())
def test_commands_only_relay_nothing(app: App, body: str) -> None:
    deliver(app, practitioner_reply(open_case(app), body))
    assert "relay" not in outbox_kinds(app)
    ticket = the_ticket(app)
    assert ticket.category == "threats" and ticket.assignee == ANNA
    assert ticket.status == "open"  # nothing was said to the requester
    [signposting] = outbox(app, "signposting")  # there is a template for threats
    assert [a.addr_spec for a in signposting["To"].addresses] == [TEACHER]
    assert "police" in plain_body(signposting)
    assert [e.detail["after"] for e in events(app, "ticket.assigned")] == [ANNA]


BAD_COMMANDS = {
    "unknown-command": ("#categroy reputation", "#categroy: unknown command (known commands: "),
    "unknown-category": ("#category nonsense",
                         '#category: "nonsense" is not a category (one of: illegal_images, '),
    "not-a-practitioner": ("#assign someone@else.example",
                           '#assign: "someone@else.example" is not a practitioner (one of: me, '
                           "anna@helpline.example, ben@helpline.example)"),
    "unknown-platform": ("#escalate myspace",
                         '#escalate: "myspace" is not a platform in the directory (one of: '),
}


@pytest.mark.parametrize("line, error", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_a_refused_command_holds_the_answer_and_the_others_apply(
    app: App, line: str, error: str
) -> None:
    notification = open_case(app)
    reply = practitioner_reply(notification, f"#status closed\n{line}\n\nHi Jo, an answer.\n",
                               message_id="bad@helpline.example")
    deliver(app, reply)
    ticket = the_ticket(app)
    assert ticket.status == "closed"  # the valid command ran
    assert outbox(app, "relay") == []  # the answer was held, not sent
    assert outbox_kinds(app) == ["acknowledgement", "notification", "closure", "command_error"]
    [answer] = outbox(app, "command_error")
    assert [a.addr_spec for a in answer["To"].addresses] == [ANNA] and answer["Cc"] is None
    assert answer["In-Reply-To"] == "<bad@helpline.example>"
    assert answer["Auto-Submitted"] == "auto-replied"
    assert bound_to(app, reply_address(answer)) == ANNA  # the notification's went to the team
    assert bound_to(app, reply_address(notification)) == TEAM
    body = plain_body(answer)
    assert "Done:\n- status closed" in body
    assert f"Refused (nothing of these was done):\n- {error}" in body
    assert "Your answer was NOT sent to the requester" in body
    assert "> Hi Jo, an answer." in body and "with #send alone" in body
    [rejected] = events(app, "command.rejected")
    assert rejected.actor == ANNA and error in " ".join(rejected.detail["errors"])
    assert "text-held" in inbound(app)[1].flags


def send_again(app: App, report: EmailMessage, body: str, **kwargs: Any) -> None:
    """The practitioner answers the report, as a mail client quotes it."""
    quoted = "\n".join(f"> {line}" for line in plain_body(report).splitlines())
    deliver(app, practitioner_reply(report, f"{body}\n\nOn Monday, Helpline wrote:\n{quoted}\n",
                                    references=[*report["References"].split(),
                                                report["Message-ID"]], **kwargs))


def test_category_typo_keeps_the_assignment_and_send_relays_the_held_answer(app: App) -> None:
    notification = open_case(app)
    deliver(app, practitioner_reply(
        notification, "#assign me\n#category sextortoin\n\nHi Jo,\n\nPlease keep the "
        "messages and do not pay.\n\nKind regards,\nAnna\n", message_id="first@helpline.example"))
    ticket = the_ticket(app)
    assert ticket.assignee == ANNA and ticket.category is None
    assert outbox(app, "relay") == []
    [report] = outbox(app, "command_error")
    body = plain_body(report)
    assert "- assigned to anna@helpline.example" in body
    assert '#category: "sextortoin" is not a category (one of: ' in body and "sextortion" in body
    assert "> Hi Jo,\n>\n> Please keep the messages and do not pay." in body
    assert "Kind regards" not in body  # the sign-off would not have been sent either

    send_again(app, report, "#send\n#category sextortion")
    [relay] = outbox(app, "relay")
    assert [a.addr_spec for a in relay["To"].addresses] == [TEACHER]
    assert paragraphs(plain_body(relay))[:2] == [
        "Hi Jo,", "Please keep the messages and do not pay."]
    assert "#send" not in plain_body(relay) and "sextortoin" not in plain_body(relay)
    assert the_ticket(app).category == "sextortion"
    assert the_ticket(app).status == "waiting"
    assert "text-sent" in inbound(app)[1].flags
    assert len(outbox(app, "command_error")) == 1 and outbox(app, "command_done") == []
    # nothing is held any more: a second #send says so, and sends nothing
    send_again(app, report, "#send")
    assert len(outbox(app, "relay")) == 1
    [done] = outbox(app, "command_done")
    assert "no held answer" in plain_body(done)


def test_send_with_new_text_sends_that_instead(app: App) -> None:
    deliver(app, practitioner_reply(open_case(app), "#frobnicate\n\nHi Jo, draft answer.\n"))
    [report] = outbox(app, "command_error")
    send_again(app, report, "#send\n\nHi Jo, the corrected answer.")
    [relay] = outbox(app, "relay")
    assert "the corrected answer" in plain_body(relay) and "draft" not in plain_body(relay)


def test_send_sends_the_answer_of_the_report_it_answers(app: App) -> None:
    notification = open_case(app)
    deliver(app, practitioner_reply(notification, "#frobnicate\n\nHi Jo, the first answer.\n"))
    deliver(app, practitioner_reply(notification, "#frobnicate\n\nHi Jo, the second answer.\n"))
    first_report, _ = outbox(app, "command_error")
    send_again(app, first_report, "#send")
    [relay] = outbox(app, "relay")
    assert "the first answer" in plain_body(relay) and "second" not in plain_body(relay)
    assert ["text-sent" in m.flags for m in inbound(app)[1:3]] == [True, False]


SIGNATURE_ONLY = {
    "a-name-not-the-writers": ("#close\n\nPat\n", True),
    "the-writers-own-name": ("#close\n\nAnna\n", False),
    "name-and-phone": ("#close\n\nPat\n07700 900123\n", True),
}


@pytest.mark.parametrize("body, reported", SIGNATURE_ONLY.values(), ids=SIGNATURE_ONLY.keys())
def test_a_signature_alone_is_never_relayed(app: App, body: str, reported: bool) -> None:
    deliver(app, practitioner_reply(open_case(app), body))
    assert outbox(app, "relay") == []
    assert the_ticket(app).status == "closed"
    [closure] = outbox(app, "closure")
    assert "Pat" not in plain_body(closure) and "Anna" not in plain_body(closure)
    reports = outbox(app, "command_done")
    assert len(reports) == int(reported)
    if reported:
        assert "reads as a signature only" in plain_body(reports[0])
        assert "> Pat" in plain_body(reports[0])


# --- who may speak as a practitioner -----------------------------------------------------


def _no_token(notification: EmailMessage) -> bytes:
    return practitioner_reply(notification, "#close\n\nHi Jo, an answer.\n", to=HELPLINE)


def _stranger(notification: EmailMessage) -> bytes:
    return practitioner_reply(notification, "#close\n\nHi Jo, an answer.\n",
                              sender="mallory@evil.example")


def _tampered(notification: EmailMessage) -> bytes:
    address = reply_address(notification)
    local, domain = address.split("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    return practitioner_reply(notification, "#close\n\nHi Jo, an answer.\n", to=forged)


FORGERIES = {
    "practitioner-without-token": (_no_token, "practitioner-without-token"),
    "stranger-with-valid-token": (_stranger, "unauthenticated-practitioner"),
    "tampered-token": (_tampered, "bad-token"),
}


@pytest.mark.parametrize("build, flag", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_practitioner_runs_nothing_and_is_flagged(app: App, build, flag: str) -> None:
    deliver(app, build(open_case(app)))
    assert_nothing_ran(app)
    message = inbound(app)[1]
    assert message.kind == "requester" and flag in message.flags
    assert events(app, "command.rejected") == []


AUTH_CASES = {
    "no-header": (None, None, False, "authentication:no-trusted-header"),
    "forged-below-ours": (AUTH_FAIL, AUTH_PASS, False, "authentication:no-pass"),
    "dkim-dmarc-pass": (AUTH_PASS, None, True, None),
}


@pytest.mark.parametrize("ours, senders, runs, flag", AUTH_CASES.values(), ids=AUTH_CASES.keys())
def test_required_authentication(
    make_app, ours: str | None, senders: str | None, runs: bool, flag: str | None
) -> None:
    """``ours``: the header our MTA put on top; ``senders``: one the sender wrote."""
    app = make_app(practitioners={"require_authentication": True})
    notification = open_case(app)
    headers = {"Authentication-Results": senders} if senders else {}
    reply = practitioner_reply(notification, "#category reputation\n\nHi Jo, an answer.\n",
                               headers=headers)
    if ours:
        reply = f"Authentication-Results: {ours}\n".encode() + reply
    deliver(app, reply)
    assert (the_ticket(app).category == "reputation") is runs
    assert bool(outbox(app, "relay")) is runs
    if flag:
        assert {flag, "unauthenticated-practitioner"} <= set(inbound(app)[1].flags)


# --- relay details -----------------------------------------------------------------------


def test_cc_is_pending_and_receives_nothing_until_allowed(app: App) -> None:
    notification = open_case(app, cc=["deputy@school.example"])
    assert "Not receiving answers: deputy@school.example." in plain_body(notification)
    deliver(app, practitioner_reply(notification, "Hi Jo, an answer for you only.\n"))
    [relay] = outbox(app, "relay")
    assert relay["Cc"] is None and [a.addr_spec for a in relay["To"].addresses] == [TEACHER]
    with app.sessions() as session:
        people = session.execute(select(Participant.address, Participant.state)).all()
    assert dict(people) == {TEACHER: "allowed", "deputy@school.example": "pending"}


def test_allowed_participants_receive_the_relay(app: App) -> None:
    notification = open_case(app, cc=["deputy@school.example"])
    deliver(app, practitioner_reply(notification, "#allow deputy@school.example\n\n"
                                                  "Hi Jo, an answer for you both.\n"))
    [relay] = outbox(app, "relay")
    assert [a.addr_spec for a in relay["Cc"].addresses] == ["deputy@school.example"]
    [row] = [r for r in outbox_rows(app) if r.kind == "relay"]
    assert sorted(row.rcpt_to) == ["deputy@school.example", TEACHER]


def test_explicit_status_wins_over_waiting(app: App) -> None:
    deliver(app, practitioner_reply(open_case(app), "#status open\n\nHi Jo, more soon.\n"))
    assert outbox(app, "relay") and the_ticket(app).status == "open"


def test_close_relays_then_sends_closure_and_requester_reopens(app: App) -> None:
    deliver(app, practitioner_reply(open_case(app), "#close\n\nHi Jo, glad it is sorted.\n"))
    assert outbox_kinds(app)[2:] == ["relay", "closure"]
    [closure] = outbox(app, "closure")
    assert "closed case HL-000001" in plain_body(closure)
    assert closure["In-Reply-To"] == f"<{CASE_ID}>"
    ticket = the_ticket(app)
    assert ticket.status == "closed" and ticket.closed_at is not None
    deliver(app, mail(message_id="again@school.example", in_reply_to=CASE_ID,
                      subject="Re: Comments about me on Facebook", body="It is back.\n"))
    assert the_ticket(app).status == "open"


def test_escalate_by_email_opens_the_escalation(app: App) -> None:
    url = "https://www.facebook.com/groups/123/posts/456"
    body = f"#escalate facebook {url}\n\nHi Jo, we will raise this with Facebook.\n"
    deliver(app, practitioner_reply(open_case(app), body))
    [opened] = events(app, "escalation.opened")
    assert opened.actor == ANNA
    [escalation] = outbox(app, "escalation")
    assert [a.addr_spec for a in escalation["To"].addresses] == [
        app.platforms["facebook"].address]
    assert url in plain_body(escalation)
    assert "we will raise this" not in plain_body(escalation)  # the relay is not the context
    assert len(outbox(app, "relay")) == 1 and outbox(app, "command_done") == []


def test_escalate_with_a_note_gives_the_platform_context(app: App) -> None:
    body = ("#escalate facebook https://www.facebook.com/groups/123/posts/456\n"
            "#note\nThe group shares photos of pupils taken at the school gate.\n")
    deliver(app, practitioner_reply(open_case(app), body))
    [escalation] = outbox(app, "escalation")
    assert "photos of pupils taken at the school gate" in plain_body(escalation)
    assert outbox(app, "relay") == []


def test_escalate_that_cannot_go_is_explained(app: App) -> None:
    deliver(app, practitioner_reply(open_case(app), "#escalate tiktok\n\nHi Jo.\n"))
    assert outbox(app, "escalation") == []
    [done] = outbox(app, "command_done")
    assert [a.addr_spec for a in done["To"].addresses] == [ANNA]
    assert "nothing was sent to TikTok" in plain_body(done)


def test_outcome_closes_the_escalation(app: App) -> None:
    notification = open_case(app)
    url = "https://www.facebook.com/groups/123/posts/456"
    deliver(app, practitioner_reply(notification, f"#escalate facebook {url}\n#note\n"))
    deliver(app, practitioner_reply(notification, "#outcome removed\n#note\n",
                                    message_id="outcome@helpline.example"))
    with app.sessions() as session:
        [row] = session.execute(select(Escalation)).scalars()
    assert (row.status, row.outcome) == ("resolved", "removed")


ATTACHMENT_CASES = {
    "ordinary": ("", ["guide.pdf"], 0),
    "illegal-case": ("#category illegal_images\n", [], 1),
}


@pytest.mark.parametrize("command, relayed, withheld", ATTACHMENT_CASES.values(),
                         ids=ATTACHMENT_CASES.keys())
def test_attachments_follow_the_relay_unless_withheld(
    app: App, command: str, relayed: list[str], withheld: int
) -> None:
    msg = parse(practitioner_reply(open_case(app), f"{command}Hi Jo, see the guide.\n"))
    msg.add_attachment(b"%PDF-1.4 guide", maintype="application", subtype="pdf",
                       filename="guide.pdf")
    deliver(app, msg.as_bytes())
    [relay] = outbox(app, "relay")
    assert [a.get_filename() for a in relay.iter_attachments()] == relayed
    assert len(outbox(app, "command_done")) == withheld
    if withheld:
        assert "never forwarded" in plain_body(outbox(app, "command_done")[0])


# --- the sign-off (pure) -----------------------------------------------------------------


SIGN_OFFS = {
    "kind-regards-block": ("Answer.\n\nKind regards,\nAnna\nPractitioner | Helpline\n"
                           "T: 0344 381 4772", "Answer."),
    "thanks-name-one-line": ("Answer.\n\nThanks, Anna", "Answer."),
    "only-a-sign-off": ("Best wishes,\nAnna", ""),
    "thank-you-sentence-kept": ("Answer.\n\nThank you for your patience.",
                                "Answer.\n\nThank you for your patience."),
    "sentence-after-best-wishes-kept": ("Answer.\n\nBest wishes\nfor the meeting tomorrow.",
                                        "Answer.\n\nBest wishes\nfor the meeting tomorrow."),
    "blank-runs-collapsed": ("One.\n\n\n\nTwo.   \n", "One.\n\nTwo."),
}


@pytest.mark.parametrize("body, expected", SIGN_OFFS.values(), ids=SIGN_OFFS.keys())
def test_relay_text_drops_the_sign_off(body: str, expected: str) -> None:
    assert relay_text(body) == expected
