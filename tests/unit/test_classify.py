"""Unit tests for mailroom.intake.classify: one small hand-written message per rule."""

from __future__ import annotations

import dataclasses
import email
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from mailroom.intake.classify import (
    Classification,
    classify,
    is_noreply_address,
)
from mailroom.intake.classify import ClassificationKind as Kind

OUR_DOMAINS = ("helpline.example.org",)
LOOP_TOKEN = "help@helpline.example.org"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "classify"
HUMAN_BODY = "Hello, someone is sharing photos of my daughter online. Can you help?\n"


def mail(
    *extra: str,
    subject: str = "Photos of my daughter shared online",
    sender: str = "Sam Parent <sam@example.net>",
    body: str = HUMAN_BODY,
    content_type: str = "text/plain; charset=utf-8",
) -> Message:
    """A message as a door would store it: extra header lines come first."""
    head = [
        *extra,
        f"From: {sender}",
        "To: help@helpline.example.org",
        f"Subject: {subject}",
        "Message-ID: <CAF-1234@mail.example.net>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
    ]
    raw = "\n".join(head) + "\n\n" + body
    return email.message_from_bytes(raw.encode("utf-8"), policy=compat32)


def run(msg: Message, envelope_sender: str | None = "sam@example.net") -> Classification:
    return classify(
        msg, envelope_sender=envelope_sender, our_domains=OUR_DOMAINS, loop_token=LOOP_TOKEN
    )


def fixture(name: str) -> Message:
    return email.message_from_bytes((FIXTURES / name).read_bytes(), policy=compat32)


DSN_BODY = """\
--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; sam@example.net
Action: {action}
Status: {status}

--B--
"""


def dsn(action: str = "failed", status: str = "5.1.1", **kwargs: str) -> Message:
    return mail(
        subject=kwargs.get("subject", "Delivery Status Notification"),
        sender=kwargs.get("sender", "Mail Delivery System <MAILER-DAEMON@mx.example.net>"),
        content_type='multipart/report; report-type=delivery-status; boundary="B"',
        body=DSN_BODY.format(action=action, status=status),
    )


# --- the result type ------------------------------------------------------------------


def test_human_mail_is_normal_with_no_reasons() -> None:
    result = run(mail())
    assert result == Classification(Kind.NORMAL, ())
    assert not result.is_automatic


def test_classification_is_frozen_and_kinds_are_the_four() -> None:
    assert set(Kind) == {"bounce", "auto_reply", "loop", "normal"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        run(mail()).kind = Kind.BOUNCE  # type: ignore[misc]


# --- loops ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reasons"),
    [
        (["X-Loop: help@helpline.example.org"], ("x-loop",)),
        (["X-Loop: HELP@Helpline.Example.org "], ("x-loop",)),
        (["X-Loop: Helpline <help@helpline.example.org>"], ("x-loop",)),
        (["X-Loop: owner@lists.example.com", "X-Loop: help@helpline.example.org"], ("x-loop",)),
    ],
    ids=["exact", "case-and-space", "with-display-name", "second-x-loop"],
)
def test_our_x_loop_token_is_a_loop(headers: list[str], reasons: tuple[str, ...]) -> None:
    assert run(mail(*headers)) == Classification(Kind.LOOP, reasons)


def test_our_message_id_is_a_loop() -> None:
    msg = mail()
    msg.replace_header("Message-ID", "<mailroom.t12.3@helpline.example.org>")
    assert run(msg) == Classification(Kind.LOOP, ("our-message-id",))


def test_custom_message_id_prefix() -> None:
    msg = mail()
    msg.replace_header("Message-ID", "<hl-77@helpline.example.org>")
    result = classify(
        msg,
        envelope_sender="x@example.net",
        our_domains=OUR_DOMAINS,
        loop_token=LOOP_TOKEN,
        our_message_id_prefix="hl-",
    )
    assert result.kind == Kind.LOOP


@pytest.mark.parametrize(
    "message_id",
    [
        "<other.1@helpline.example.org>",
        "<mailroom.1@example.net>",
        "<mailroom.1@sub.helpline.example.org>",
    ],
    ids=["our-domain-other-prefix", "our-prefix-other-domain", "subdomain"],
)
def test_message_ids_that_are_not_ours(message_id: str) -> None:
    msg = mail()
    msg.replace_header("Message-ID", message_id)
    assert run(msg).kind == Kind.NORMAL


def test_someone_elses_x_loop_is_not_our_loop() -> None:
    assert run(mail("X-Loop: owner-majordomo@kvack.example.org")).kind == Kind.NORMAL


def test_empty_loop_token_never_matches() -> None:
    msg = mail("X-Loop: ")
    assert (
        classify(msg, envelope_sender="a@b.example", our_domains=(), loop_token="").kind
        == Kind.NORMAL
    )


def test_loop_wins_over_automatic_headers() -> None:
    msg = mail("X-Loop: help@helpline.example.org", "Auto-Submitted: auto-replied")
    assert run(msg, envelope_sender="").kind == Kind.LOOP


# --- bounces --------------------------------------------------------------------------


def test_dsn_is_a_bounce() -> None:
    result = run(dsn(), envelope_sender="")
    assert result.kind == Kind.BOUNCE
    assert {"dsn", "mailer-daemon", "null-sender"} <= set(result.reasons)
    assert "delayed" not in result.reasons


def test_dsn_mislabelled_multipart_mixed_is_a_bounce() -> None:
    msg = mail(
        sender="postmaster@mx.example.net",
        content_type='multipart/mixed; boundary="B"',
        body=DSN_BODY.format(action="failed", status="5.0.0"),
    )
    assert run(msg).kind == Kind.BOUNCE
    assert "dsn" in run(msg).reasons


@pytest.mark.parametrize(
    ("action", "status", "subject"),
    [
        ("delayed", "4.4.1", "Delivery Status Notification (Delay)"),
        ("delayed", "4.0.0", "Delayed Mail (still being retried)"),
    ],
    ids=["gmail-delay", "postfix-delay"],
)
def test_delay_warning_is_a_bounce_marked_delayed(action: str, status: str, subject: str) -> None:
    result = run(dsn(action, status, subject=subject), envelope_sender="")
    assert result.kind == Kind.BOUNCE
    assert result.reasons[-1] == "delayed"


def test_delay_without_report_is_marked_delayed() -> None:
    msg = mail(
        subject="Warning: message 1sH2-0003 delayed 24 hours",
        sender="Mail Delivery System <Mailer-Daemon@mx.example.com>",
        body="This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mx.example.com.\n",
    )
    result = run(msg, envelope_sender="")
    assert (result.kind, result.reasons[-1]) == (Kind.BOUNCE, "delayed")


@pytest.mark.parametrize(
    ("extra", "subject", "sender", "body", "envelope", "expected"),
    [
        (
            [],
            "failure notice",
            "MAILER-DAEMON@mail.example.com",
            "Hi. This is the qmail-send program at mail.example.com.\n",
            "",
            "mailer-daemon",
        ),
        (
            ["X-Failed-Recipients: jo@example.com"],
            "Mail delivery failed",
            "Bounce <b@mx.example>",
            "no match\n",
            "someone@example.com",
            "x-failed-recipients",
        ),
        (
            [],
            "Undeliverable: Your case",
            "postmaster@example.org",
            "Delivery has failed to these recipients or groups:\n",
            "a@example.org",
            "postmaster",
        ),
        (
            [],
            "Returned mail: see transcript for details",
            "Nobody <x@example.org>",
            "   ----- Transcript of session follows -----\n",
            "",
            "subject:bounce",
        ),
        (
            [],
            "Undelivered Mail Returned to Sender",
            "Mail System <sys@mx.example.org>",
            "This is the mail system at host mx.example.org.\n",
            "sys@mx.example.org",
            "body:bounce",
        ),
        (
            ["Delivered-To: gpc-talk-bounces@example.org"],
            "Non remis (delivery failed)",
            "relay@example.org",
            "Your message could not be delivered to\nduke@example.org\n",
            "relay@example.org",
            "to:bounce-address",
        ),
    ],
    ids=[
        "qmail-mailer-daemon",
        "exim-x-failed",
        "exchange-postmaster",
        "sendmail-null-sender",
        "postfix-subject-body",
        "to-bounces-address",
    ],
)
def test_bounce_shapes(
    extra: list[str], subject: str, sender: str, body: str, envelope: str, expected: str
) -> None:
    result = run(mail(*extra, subject=subject, sender=sender, body=body), envelope_sender=envelope)
    assert result.kind == Kind.BOUNCE
    assert expected in result.reasons


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Fwd: Undelivered Mail Returned to Sender",
            "Why did this come back?\n\n> This is the mail system at host mx.example.org.\n",
        ),
        ("Delivery failure message - is it a scam?", "A text said my parcel delivery failed.\n"),
        ("Re: my email to the school was returned", "It said: user unknown. Wrong address?\n"),
    ],
    ids=["forwarded-bounce", "parcel-scam", "human-quoting-error"],
)
def test_one_weak_sign_is_not_a_bounce(subject: str, body: str) -> None:
    assert run(mail(subject=subject, body=body)).kind == Kind.NORMAL


def test_null_sender_with_bounce_text_is_a_bounce() -> None:
    msg = mail(
        sender="<>",
        subject="Re: hello",
        body="You sent mail to a@example.com. That's not a valid user here.\n",
    )
    assert run(msg, envelope_sender="").kind == Kind.BOUNCE


# --- reports that are not failures ----------------------------------------------------


def test_read_receipt_is_auto_reply_mdn() -> None:
    msg = mail(
        subject="Read: Photos",
        content_type='multipart/report; report-type=disposition-notification; boundary="B"',
        body="--B\nContent-Type: text/plain\n\nRead.\n\n--B\n"
        "Content-Type: message/disposition-notification\n\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n\n--B--\n",
    )
    assert run(msg, envelope_sender="") == Classification(Kind.AUTO_REPLY, ("mdn", "null-sender"))


def test_abuse_report_is_auto_reply_arf() -> None:
    msg = mail(
        content_type='multipart/report; report-type=feedback-report; boundary="B"',
        body="--B\nContent-Type: text/plain\n\nAbuse report\n\n--B\n"
        "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n\n--B--\n",
    )
    assert run(msg).reasons == ("arf",)


def test_successful_delivery_report_is_not_a_bounce() -> None:
    assert run(dsn("delivered", "2.0.0")) == Classification(Kind.AUTO_REPLY, ("dsn-success",))


# --- automatic replies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto-submitted:auto-replied"),
        ("Auto-Submitted: auto-generated (failure)", "auto-submitted:auto-generated"),
        ("Auto-Submitted: Auto-Notified", "auto-submitted:auto-notified"),
        ("Precedence: bulk", "precedence:bulk"),
        ("Precedence: JUNK", "precedence:junk"),
        ("Precedence: list", "precedence:list"),
        ("Precedence: auto_reply", "precedence:auto_reply"),
        ("List-Id: Parents <parents.lists.example.org>", "list-id"),
        ("X-Autoreply: yes", "x-autoreply"),
        ("X-Autorespond: Thank you", "x-autorespond"),
        ("X-Auto-Response-Suppress: All", "x-auto-response-suppress"),
        ("X-Auto-Response-Suppress: DR, OOF, AutoReply", "x-auto-response-suppress"),
        ("X-Bluebottle-Request: <1234>", "challenge-response"),
        ("X-Boxbe-Notice: pending", "challenge-response"),
    ],
    ids=lambda value: value if ":" not in value else value.split(":")[0].lower(),
)
def test_automatic_headers(header: str, reason: str) -> None:
    result = run(mail(header))
    assert result.kind == Kind.AUTO_REPLY
    assert reason in result.reasons


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "Precedence: first-class",
        "List-Unsubscribe: <mailto:unsub@example.org>",
        "X-Autoreply: no",
        "X-Auto-Response-Suppress: DR, RN, NRN",
        "X-MS-Exchange-Inbox-Rules-Loop: kim@example.org",
    ],
    ids=[
        "auto-submitted-no",
        "precedence-first-class",
        "list-unsubscribe-alone",
        "x-autoreply-no",
        "suppress-receipts-only",
        "exchange-rules-loop-alone",
    ],
)
def test_headers_that_do_not_make_mail_automatic(header: str) -> None:
    assert run(mail(header)).kind == Kind.NORMAL


def test_list_unsubscribe_with_any_precedence_is_bulk_mail() -> None:
    result = run(mail("Precedence: normal", "List-Unsubscribe: <https://news.example.com/u>"))
    assert result == Classification(Kind.AUTO_REPLY, ("list-unsubscribe",))


def test_list_unsubscribe_with_precedence_adds_its_reason() -> None:
    result = run(mail("Precedence: bulk", "List-Unsubscribe: <mailto:u@lists.example.org>"))
    assert result.reasons == ("precedence:bulk", "list-unsubscribe")


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Photos of my daughter",
        "Out of Office AutoReply: Case 12",
        "Automatic reply: [Helpline #12] Update",
        "AUTO: Smith, John is out of the office. (returning 05/01/2024)",
        "Auto: Your message",
        "Autoreply: Your message",
        "Auto-Reply: Your message",
        "Re: blah blah (Automatic Response)",
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Automatische Antwort: Ihre Anfrage",
        "Réponse automatique : votre demande",
        "Respuesta automática: su consulta",
        "Risposta automatica: richiesta",
        "Afwezigheidsbericht: uw vraag",
        "Automatisch antwoord: uw vraag",
        "Automatisk svar: din fråga",
        "[Automatyczna odpowiedź] test",
        "Автоответ: ваш запрос",
        "I am away until Monday",
        "I'm out of the office",
        "On vacation until 3 June",
        "Kim Smith is out of the office until Friday",
        "=?utf-8?q?R=C3=A9ponse_automatique_:_votre_demande?=",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    result = run(mail(subject=subject))
    assert result == Classification(Kind.AUTO_REPLY, ("subject:out-of-office",))


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office hours - who do I call?",
        "Auto insurance advert uses my son's photo",
        "Automatic payments taken from my child's account",
        "I am away from home and my account was hacked",
        "On vacation photos posted without consent",
        "Absence from school because of bullying",
        "Vacation: photos posted",
        "Re: Automatic replies from your service?",
        "Fwd: Out of Office: my teacher",
    ],
)
def test_human_subjects_that_look_automatic(subject: str) -> None:
    assert run(mail(subject=subject)).kind == Kind.NORMAL


# --- the null sender ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envelope_sender", "headers"),
    [
        ("", []),
        ("<>", []),
        ("MAILER-DAEMON", []),
        (None, ["Return-Path: <>"]),
        (None, ["Return-Path: <>", "Return-Path: <sam@example.net>"]),
    ],
    ids=["empty", "angle-brackets", "mailer-daemon", "return-path-null", "topmost-return-path"],
)
def test_null_sender_alone_is_automatic(envelope_sender: str | None, headers: list[str]) -> None:
    assert run(mail(*headers), envelope_sender=envelope_sender) == Classification(
        Kind.AUTO_REPLY, ("null-sender",)
    )


@pytest.mark.parametrize(
    ("envelope_sender", "headers"),
    [
        (None, []),
        (None, ["Return-Path: <sam@example.net>"]),
        ("sam@example.net", ["Return-Path: <>"]),
    ],
    ids=["unknown", "return-path-person", "envelope-wins-over-header"],
)
def test_non_null_senders(envelope_sender: str | None, headers: list[str]) -> None:
    assert run(mail(*headers), envelope_sender=envelope_sender).kind == Kind.NORMAL


def test_null_sender_reason_comes_first_among_auto_reasons() -> None:
    result = run(mail("Auto-Submitted: auto-replied"), envelope_sender="")
    assert result.reasons == ("null-sender", "auto-submitted:auto-replied")


# --- whole hand-written messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("automatic/exchange-oof.eml", Kind.AUTO_REPLY, "x-auto-response-suppress"),
        ("automatic/german-oof-subject-only.eml", Kind.AUTO_REPLY, "subject:out-of-office"),
        ("automatic/vacation-responder.eml", Kind.AUTO_REPLY, "auto-submitted:auto-replied"),
        ("automatic/challenge-response.eml", Kind.AUTO_REPLY, "challenge-response"),
        ("automatic/read-receipt.eml", Kind.AUTO_REPLY, "mdn"),
        ("automatic/postfix-bounce.eml", Kind.BOUNCE, "dsn"),
        ("automatic/exim-bounce.eml", Kind.BOUNCE, "x-failed-recipients"),
        ("automatic/qmail-bounce.eml", Kind.BOUNCE, "body:bounce"),
        ("automatic/gmail-delay.eml", Kind.BOUNCE, "delayed"),
        ("automatic/looped-acknowledgement.eml", Kind.LOOP, "x-loop"),
    ],
    ids=lambda value: Path(value).stem if isinstance(value, str) and "/" in value else None,
)
def test_fixture_messages(name: str, kind: str, reason: str) -> None:
    result = run(fixture(name), envelope_sender=None)
    assert result.kind == kind
    assert reason in result.reasons


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "human").glob("*.eml")), ids=lambda path: path.stem
)
def test_human_fixtures_are_normal(path: Path) -> None:
    msg = email.message_from_bytes(path.read_bytes(), policy=compat32)
    assert run(msg, envelope_sender=None) == Classification(Kind.NORMAL, ())


def test_garbage_never_raises() -> None:
    msg = email.message_from_bytes(
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=\n"
        b"Subject: =?x-unknown?q?=FF?=\nFrom: <<@@>>\n\n\xff\xfe--\n",
        policy=compat32,
    )
    assert run(msg, envelope_sender=None).kind in tuple(Kind)


# --- no-reply addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "noreply@example.com",
        "no-reply@example.com",
        "no_reply@example.com",
        "NoReply@Example.com",
        "do-not-reply@example.com",
        "donotreply@example.com",
        "MAILER-DAEMON@mx.example.com",
        "mailer-daemon",
        "postmaster@example.org",
        "bounce@example.org",
        "bounces+abc=example.org@lists.example.com",
        "parents-bounces@lists.example.org",
        "notifications@platform.example.com",
        "notification@platform.example.com",
        "alerts-noreply@example.com",
        "noreply123@example.com",
        "Example Service <no-reply@example.com>",
        "MAILER-DAEMON@mx.example.org",
        "postmaster@example.org",
        "parents-request@lists.example.org",
        "parents-admin@lists.example.org",
        "parents-owner@lists.example.org",
        "parents-bounces+jo=school.example@lists.example.org",
    ],
)
def test_noreply_addresses(addr: str) -> None:
    assert is_noreply_address(addr)


@pytest.mark.parametrize(
    "addr",
    [
        "sam@example.net",
        "nora@example.net",
        "replies@example.net",
        "bouncer@club.example.org",
        "post@example.org",
        "Sam <sam.noreplyson@example.net>",
        "request@example.org",
        "admin@school.example",
        "requests.team@example.org",
        "",
    ],
)
def test_addresses_people_read(addr: str) -> None:
    assert not is_noreply_address(addr)
