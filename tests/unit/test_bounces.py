"""Unit tests for mailroom.intake.bounces: what a bounce says about the mail we sent."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from mailroom.intake.bounces import BounceInfo, decoded_header, parse_bounce, strip_message_id
from tests.pathological import BOUNCE_BODIES, text_bounce

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "classify"
ORIGINAL = """\
From: Helpline <help@helpline.example.org>
To: sam@example.net
Subject: [Helpline #12] We have received your message
Message-ID: <mailroom.t12.1@helpline.example.org>

Thank you for writing to us.
"""


def parse(text: str) -> Message:
    return email.message_from_bytes(text.encode("utf-8"), policy=compat32)


def report(*groups: str, original_type: str = "message/rfc822") -> Message:
    """A multipart/report DSN with the given per-recipient field groups."""
    status = "Reporting-MTA: dns; mx.example.net\n\n" + "\n\n".join(groups) + "\n"
    return parse(
        "From: MAILER-DAEMON@mx.example.net\nSubject: Delivery Status Notification\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nSee the report.\n\n"
        f"--B\nContent-Type: message/delivery-status\n\n{status}\n"
        f"--B\nContent-Type: {original_type}\n\n{ORIGINAL}\n--B--\n"
    )


# --- delivery status reports ---------------------------------------------------------


def test_dsn_gives_recipient_permanence_and_original() -> None:
    msg = report("Final-Recipient: rfc822; sam@example.net\nAction: failed\nStatus: 5.1.1")
    assert parse_bounce(msg) == BounceInfo(
        original_message_id="mailroom.t12.1@helpline.example.org",
        recipients=("sam@example.net",),
        permanent=True,
    )


def test_original_recipient_is_preferred_to_final() -> None:
    msg = report(
        "Original-Recipient: rfc822;Sam@Example.net\n"
        "Final-Recipient: rfc822; sam.parent@mailhost.example.net\nAction: failed\nStatus: 5.0.0"
    )
    assert parse_bounce(msg).recipients == ("sam@example.net",)


@pytest.mark.parametrize(
    ("fields", "permanent"),
    [
        ("Action: failed\nStatus: 5.2.2", True),
        ("Action: failure\nStatus: 553 too big", True),
        ("Action: delayed\nStatus: 4.4.7", False),
        ("Status: 4.2.2", False),
        ("Status: 5.1.1", True),
        ("Status: 553 Exceeded maximum inbound message size", True),
    ],
    ids=["failed", "failure-spelling", "delayed", "status-4xx", "status-5xx", "smtp-code-status"],
)
def test_permanence_from_the_report(fields: str, permanent: bool) -> None:
    msg = report(f"Final-Recipient: rfc822; sam@example.net\n{fields}")
    assert parse_bounce(msg).permanent is permanent


def test_several_recipients_and_delivered_ones_left_out() -> None:
    msg = report(
        "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1",
        "Final-Recipient: rfc822; b@example.net\nAction: delivered\nStatus: 2.0.0",
        "Final-Recipient: rfc822; c@example.net\nAction: delayed\nStatus: 4.4.1",
    )
    info = parse_bounce(msg)
    assert (info.recipients, info.permanent) == (("a@example.net", "c@example.net"), True)


@pytest.mark.parametrize(
    "original_type", ["message/rfc822", "text/rfc822-headers", "message/rfc822-headers"]
)
def test_original_message_id_from_attached_copy(original_type: str) -> None:
    msg = report(
        "Final-Recipient: rfc822; a@example.net\nAction: failed", original_type=original_type
    )
    assert parse_bounce(msg).original_message_id == "mailroom.t12.1@helpline.example.org"


def test_report_inside_the_returned_original_is_not_ours() -> None:
    inner = report("Final-Recipient: rfc822; old@example.com\nAction: failed").as_string()
    msg = parse(
        "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/mixed; boundary="O"\n\n'
        "--O\nContent-Type: text/plain\n\n<new@example.net>: host mx said: 550 unknown user\n\n"
        f"--O\nContent-Type: message/rfc822\n\n{inner}\n--O--\n"
    )
    assert parse_bounce(msg).recipients == ("new@example.net",)


def test_gateway_wrapped_bounce_is_unwrapped() -> None:
    inner = report("Final-Recipient: rfc822; sam@example.net\nAction: failed").as_string()
    msg = parse(
        "From: postmaster@gateway.example.net\nSubject: Delivery Status Notification\n"
        'Content-Type: multipart/mixed; boundary="W"\n\n'
        f"--W\nContent-Type: message/rfc822\n\n{inner}\n"
        "--W\nContent-Type: text/plain\n\nThis e-mail is confidential.\n--W--\n"
    )
    info = parse_bounce(msg)
    assert (info.recipients, info.permanent) == (("sam@example.net",), True)
    assert info.original_message_id == "mailroom.t12.1@helpline.example.org"


# --- free-text bounces ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "recipients"),
    [
        (
            "This is the mail system at host mx.example.net.\n\n"
            "<sam@example.net>: host mail.example.net[192.0.2.1] said: 550 5.1.1 User\n"
            "    unknown (in reply to RCPT TO command)\n",
            ("sam@example.net",),
        ),
        (
            "Hi. This is the qmail-send program at mx.example.net.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
            "<jo@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\nTo: other@example.org\n",
            ("jo@example.com",),
        ),
        (
            "A message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            "  kim@example.org\n    SMTP error from remote mail server after RCPT TO:"
            "<kim@example.org>:\n    550 No such user\n  lee@example.org\n    Unrouteable\n",
            ("kim@example.org", "lee@example.org"),
        ),
        (
            "   ----- The following addresses had permanent fatal errors -----\n"
            "alex@mailhost.example.com\n    (expanded from: alex@example.com)\n",
            ("alex@example.com",),
        ),
        (
            "Your message did not reach some or all of the intended recipients.\n\n"
            "      Subject:  Case 12\n      Sent:     01/06/2024 10:00\n\n"
            "The following recipient(s) cannot be reached:\n\n"
            "      pat@example.org on 01/06/2024 10:00\n",
            ("pat@example.org",),
        ),
        (
            "Your mail to the following recipients could not be delivered:\n\tscreenname\n",
            ("screenname@example.net",),
        ),
    ],
    ids=["postfix", "qmail", "exim", "sendmail-expanded", "exchange", "bare-name"],
)
def test_recipients_from_text(body: str, recipients: tuple[str, ...]) -> None:
    assert parse_bounce(text_bounce(body)).recipients == recipients


def test_x_failed_recipients_header() -> None:
    msg = parse(
        "From: Mailer-Daemon@mx.example.net\nX-Failed-Recipients: a@example.net, "
        "b@example.net\nSubject: Mail delivery failed\n\nSee above.\n"
    )
    assert parse_bounce(msg).recipients == ("a@example.net", "b@example.net")


def test_bounce_headers_are_never_recipients() -> None:
    body = "Could not deliver to the following:\n\nhelp@helpline.example.org wrote to you\n"
    assert "help@helpline.example.org" not in parse_bounce(text_bounce(body)).recipients


@pytest.mark.parametrize(
    ("subject", "body", "permanent"),
    [
        ("failure notice", "This is a permanent error; I've given up.\n(#4.4.1)\n", True),
        ("Warning: message 1abc delayed 24 hours", "still being retried\n", False),
        ("Delivery Status Notification (Delay)", "THIS IS A WARNING MESSAGE ONLY.\n", False),
        ("Mail delivery failed", "550 5.1.1 no such user\n", True),
        ("Returned mail", "452 4.2.2 mailbox full\n", False),
        ("Hello", "Something happened.\n", None),
    ],
    ids=["given-up-wins", "delay-warning", "gmail-delay", "5xx", "4xx", "nothing-said"],
)
def test_permanence_from_text(subject: str, body: str, permanent: bool | None) -> None:
    assert parse_bounce(text_bounce(body, subject)).permanent is permanent


def test_original_message_id_quoted_in_body() -> None:
    body = "I could not deliver it.\n\n--- Original message follows.\n\n" + ORIGINAL
    assert parse_bounce(text_bounce(body)).original_message_id == (
        "mailroom.t12.1@helpline.example.org"
    )


def test_original_message_id_quoted_with_markers() -> None:
    body = "Undeliverable.\n\n> From: help@helpline.example.org\n> Message-Id: <x1@y.example>\n"
    assert parse_bounce(text_bounce(body)).original_message_id == "x1@y.example"


def test_plain_mail_gives_nothing() -> None:
    msg = parse("From: sam@example.net\nSubject: hello\n\nJust saying hello.\n")
    assert parse_bounce(msg) == BounceInfo(None, (), None)


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "postfix-bounce",
            BounceInfo("mailroom.t123.1@helpline.example.org", ("sam.parent@example.net",), True),
        ),
        (
            "exim-bounce",
            BounceInfo("mailroom.t124.1@helpline.example.org", ("jo@example.com",), True),
        ),
        (
            "qmail-bounce",
            BounceInfo("mailroom.t125.1@helpline.example.org", ("alex@example.com",), True),
        ),
        (
            "gmail-delay",
            BounceInfo("mailroom.t126.1@helpline.example.org", ("kim@example.org",), False),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_fixture_bounces(name: str, expected: BounceInfo) -> None:
    raw = (FIXTURES / "automatic" / f"{name}.eml").read_bytes()
    assert parse_bounce(email.message_from_bytes(raw, policy=compat32)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.org>", "abc@example.org"),
        ("  <abc@example.org> (comment)", "abc@example.org"),
        ("abc@example.org", "abc@example.org"),
        ("", None),
        ("no id here", None),
    ],
    ids=["brackets", "comment", "bare", "empty", "garbage"],
)
def test_strip_message_id(value: str, expected: str | None) -> None:
    assert strip_message_id(value) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Subject: =?utf-8?q?R=C3=A9ponse?= automatique\n\n", "Réponse automatique"),
        ("Subject: Réponse automatique\n\n".encode(), "Réponse automatique"),
        (b"Subject: R\xe9ponse\n\n", "Réponse"),
        (b"Subject: =?x-unknown?q?abc?=\n\n", "abc"),
        (b"Subject: multi\n line\n\n", "multi line"),
        (b"X-Other: 1\n\n", ""),
    ],
    ids=["rfc2047", "raw-utf8", "raw-latin1", "unknown-charset", "folded", "absent"],
)
def test_decoded_header(raw: bytes, expected: str) -> None:
    msg = email.message_from_bytes(raw, policy=compat32)
    assert decoded_header(msg, "Subject") == expected


@pytest.mark.parametrize("body", BOUNCE_BODIES.values(), ids=BOUNCE_BODIES.keys())
def test_pathological_text_names_nobody(body: str) -> None:
    """Runs a regex might once have backtracked over (``make bench`` times them): a
    bounce by its sender and subject, with no address or Message-ID in it to act on."""
    assert parse_bounce(text_bounce(body)) == BounceInfo(None, (), permanent=True)


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    msg = innermost = Message()
    for _ in range(5000):  # deeper than the interpreter's recursion limit
        inner = Message()
        inner["Content-Type"] = "multipart/mixed"
        innermost.attach(inner)
        innermost = inner
    innermost.attach(parse("Content-Type: text/plain\n\n<sam@example.net>: unknown user\n"))
    msg["Content-Type"] = "multipart/mixed"
    assert parse_bounce(msg).recipients == ("sam@example.net",)


def test_garbage_never_raises() -> None:
    msg = email.message_from_bytes(
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=X\n\n"
        b"--X\nContent-Type: message/delivery-status; charset=\x00bad\n\n\xff\xfe\n"
        b"--X\nContent-Type: message/rfc822\n\n\n--X--\n",
        policy=compat32,
    )
    assert isinstance(parse_bounce(msg), BounceInfo)
