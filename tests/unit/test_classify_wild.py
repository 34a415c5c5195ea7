"""Automatic mail from the wild: each class measured on hand-written fixtures.

``tests/fixtures/classify/wild/<class>/*.eml`` hold one message each, written
after the notices real systems send; ``EXPECTED.json`` gives each one's kind,
failed recipients, permanence and (where the notice carries it) the Message-ID
of the mail that bounced. The classes:

* ``bounce-text``: English bounces without a DSN (Exim, sendmail, Postfix,
  qmail, Exchange, Office 365 HTML only, Domino) from MAILER-DAEMON, postmaster,
  ``From: <>`` or a null envelope sender;
* ``bounce-i18n``: the same in other languages and charsets (Japanese carriers
  in ISO-2022-JP and undeclared Shift_JIS, Exchange's 配信不能, German, French,
  Spanish, Italian, Portuguese, Dutch, Russian KOI8-R, Polish, Chinese GBK,
  Korean EUC-KR);
* ``service``: mail services' notifications as JSON (Amazon SES through SNS as
  bare JSON or SNS's envelope, complaints, event publishing, a delivery that is
  no failure, relays' event records as an attachment or as the body);
* ``list-manager``: Mailman 2 and 3, Majordomo, LISTSERV, Sympa, ezmlm and a
  hosted group (held for a moderator, not a member, loop alert, command results);
* ``human``: people who write about failed delivery, moderators, SES JSON:
  these must stay ``normal`` (false positives).

Each test prints its rate; the floors are what the code reaches today.
"""

from __future__ import annotations

import email
import json
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from mailroom.intake.bounces import (
    decode_text,
    decoded_header,
    list_notice_kind,
    notification_text,
    parse_bounce,
    service_notice,
)
from mailroom.intake.classify import Classification, classify
from mailroom.intake.classify import ClassificationKind as Kind

WILD = Path(__file__).resolve().parents[1] / "fixtures" / "classify" / "wild"
EXPECTED: dict[str, dict[str, object]] = json.loads((WILD / "EXPECTED.json").read_text())
CLASSES = ("bounce-text", "bounce-i18n", "service", "list-manager", "human")
FLOORS = {  # recognised, recipients exact, permanence right: fractions of the class
    "bounce-text": (1.0, 1.0, 1.0),
    "bounce-i18n": (1.0, 1.0, 1.0),
    "service": (1.0, 1.0, 1.0),
    "list-manager": (1.0, 1.0, 1.0),
    "human": (1.0, 1.0, 1.0),
}


def load(path: Path) -> Message:
    return email.message_from_bytes(path.read_bytes(), policy=compat32)


def run(msg: Message, envelope_sender: str | None = None) -> Classification:
    """As the IMAP and file doors call it: envelope unknown, Return-Path decides."""
    return classify(msg, envelope_sender=envelope_sender,
                    our_domains=("helpline.example.org",), loop_token="help@helpline.example.org")


def mail(head: str, body: str) -> Message:
    return email.message_from_bytes((head + "\n" + body).encode(), policy=compat32)


@pytest.mark.parametrize("cls", CLASSES)
def test_class_scores(cls: str) -> None:
    names = sorted(n for n in EXPECTED if n.startswith(cls + "/"))
    kinds, recipients, permanence, wrong = 0, 0, 0, []
    for name in names:
        expected, msg = EXPECTED[name], load(WILD / name)
        kind, info = run(msg).kind, parse_bounce(msg)
        ok_kind = kind == expected["kind"]
        ok_recipients = kind != Kind.BOUNCE or list(info.recipients) == expected["recipients"]
        ok_permanent = kind != Kind.BOUNCE or info.permanent is expected["permanent"]
        ok_original = info.original_message_id == expected.get("original", info.original_message_id)
        kinds += ok_kind
        recipients += ok_recipients and ok_original
        permanence += ok_permanent
        if not (ok_kind and ok_recipients and ok_permanent and ok_original):
            wrong.append(f"{name}: {kind} {info}")
    total = len(names)
    what = "kept normal (no false positive)" if cls == "human" else "recognised"
    print(f"{cls}: {what} {kinds}/{total}, recipients and original right {recipients}/{total}, "
          f"permanence right {permanence}/{total}")
    floor = FLOORS[cls]
    assert total >= 8
    assert kinds / total >= floor[0] and recipients / total >= floor[1], wrong
    assert permanence / total >= floor[2], wrong


def test_no_fixture_is_left_out() -> None:
    on_disk = {str(p.relative_to(WILD)) for p in WILD.rglob("*.eml")}
    assert on_disk == set(EXPECTED)
    assert {name.partition("/")[0] for name in EXPECTED} == set(CLASSES)


@pytest.mark.parametrize("envelope", ["", "<>"])
def test_the_smtp_doors_null_envelope_gives_the_same_kinds(envelope: str) -> None:
    """Through the SMTP door the envelope sender is known ("<>" as aiosmtpd gives it)."""
    kinds = {name: run(load(WILD / name), envelope_sender=envelope).kind for name in EXPECTED}
    assert {n: k for n, k in kinds.items() if k != EXPECTED[n]["kind"]
            and EXPECTED[n]["kind"] != "normal"} == {}


# --- decoding ------------------------------------------------------------------------------


def test_undeclared_japanese_bodies_are_decoded() -> None:
    jis = notification_text(load(WILD / "bounce-i18n" / "ja-iso2022jp-no-charset.eml"))
    sjis = notification_text(load(WILD / "bounce-i18n" / "ja-shiftjis-undeclared.eml"))
    assert "相手先のメールアドレス: taro.y@carrier.example.jp" in jis
    assert "宛先アドレス：yuki@mobile.example.ne.jp" in sjis


def test_raw_iso_2022_jp_header_is_decoded() -> None:
    msg = load(WILD / "bounce-i18n" / "ja-raw-jis-subject-header.eml")
    assert decoded_header(msg, "Subject") == "配信不能メールのお知らせ"


@pytest.mark.parametrize(
    ("raw", "charset", "text"),
    [
        ("配信エラー".encode("iso-2022-jp"), None, "配信エラー"),
        ("配信エラー".encode("shift_jis") * 3, None, "配信エラー" * 3),
        ("配信エラー".encode(), "us-ascii", "配信エラー"),
        ("Zustellung fehlgeschlagen: Empfänger unbekannt".encode("latin-1"), "iso-8859-1",
         "Zustellung fehlgeschlagen: Empfänger unbekannt"),
        ("Empfänger".encode(), "iso-8859-1", "EmpfÃ¤nger"),  # declared and decodable: kept
        ("плохо".encode("koi8-r"), "x-no-such-charset", None),
        (b"plain", None, "plain"),
    ],
    ids=["jis-undeclared", "sjis-undeclared", "utf8-declared-ascii", "latin1", "declared-kept",
         "unknown-charset", "ascii"],
)
def test_decode_text(raw: bytes, charset: str | None, text: str | None) -> None:
    decoded = decode_text(raw, charset)
    assert isinstance(decoded, str)
    if text is not None:
        assert decoded == text


# --- bounces: content and sender must agree ------------------------------------------------

PERSON = "From: Sam Parent <sam@example.net>\nTo: help@helpline.example.org\n"
FAILED = "Mail delivery failed"
FAILED_BODY = "My message could not be delivered to the school: user unknown.\n"


def test_a_person_writing_about_a_failed_delivery_is_not_a_bounce() -> None:
    assert run(mail(PERSON + f"Subject: {FAILED}\n", FAILED_BODY)).kind == Kind.NORMAL


@pytest.mark.parametrize(
    "head",
    [
        "Return-Path: <>\nFrom: mailer@relay.example.net\n",
        "From: <>\n",
        "From: Mail Delivery Subsystem <mail@relay.example.net>\n",
        "From: noreply@relay.example.net\n",
        "From: postmaster@relay.example.net\n",
        "From: relay@example.net\nAuto-Submitted: auto-generated\n",
    ],
    ids=["null-return-path", "empty-from", "mail-system-name", "noreply", "postmaster",
         "auto-submitted"],
)
def test_the_same_words_from_a_mail_system_are_a_bounce(head: str) -> None:
    msg = mail(head + "To: help@helpline.example.org\n" + f"Subject: {FAILED}\n", FAILED_BODY)
    assert run(msg).kind == Kind.BOUNCE


# --- service notifications ------------------------------------------------------------------

SES = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
    {"emailAddress": "sam@example.net"}]}, "mail": {"commonHeaders": {"messageId": "<m1@x.org>"}}}


def test_ses_json_quoted_in_a_persons_words_is_no_notification() -> None:
    msg = mail(PERSON + "Subject: SES\n", f"We get these:\n{json.dumps(SES)}\nWhat now?\n")
    assert service_notice(msg) is None
    assert run(msg).kind == Kind.NORMAL


def test_ses_json_as_the_body_is_a_bounce_with_its_recipients() -> None:
    msg = mail("From: AWS Notifications <no-reply@sns.amazonaws.com>\nSubject: AWS\n",
               json.dumps(SES) + "\n--\nIf you wish to stop receiving notifications…\n")
    assert run(msg).reasons[:2] == ("service:ses", "service:bounce")
    info = parse_bounce(msg)
    assert (info.recipients, info.permanent, info.original_message_id) == (
        ("sam@example.net",), True, "m1@x.org")


@pytest.mark.parametrize(
    "body",
    ['{"notificationType": "Bounce", "bounce": {', "[" * 100_000, '{"Type": "Notification", '
     '"Message": "not json"}', '{"notificationType": "Bounce", "mail": {}, "bounce": '
     '{"bouncedRecipients": []}}', '"just a string"'],
    ids=["truncated", "deep", "bad-envelope", "no-recipients", "scalar"],
)
def test_broken_or_empty_json_is_no_bounce(body: str) -> None:
    msg = mail("From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n", body)
    assert run(msg).kind != Kind.BOUNCE
    assert parse_bounce(msg).recipients == ()


# --- list managers ------------------------------------------------------------------------


def test_list_traffic_that_says_rejected_is_not_a_notice() -> None:
    """A post distributed by a list comes from its author, with the list's envelope."""
    msg = mail("From: Kim Dev <kim@example.org>\nSender: linux-kernel-owner@vger.example.org\n"
               "Return-Path: <linux-kernel-owner@vger.example.org>\n"
               "List-Id: <linux-kernel.vger.example.org>\nPrecedence: bulk\nSubject: Re: patch\n",
               "Your message to the list was rejected before, not a member then.\n")
    classification = run(msg)
    assert classification.kind == Kind.AUTO_REPLY
    assert "list-manager" not in classification.reasons


def test_a_person_writing_about_moderation_is_normal() -> None:
    msg = mail(PERSON + "Subject: Your message awaits moderator approval\n",
               "The forum says my report awaits moderator approval. Who can help?\n")
    assert run(msg).kind == Kind.NORMAL


def test_a_lists_post_about_a_failed_delivery_stays_a_post() -> None:
    msg = mail("From: Kim Dev <kim@example.org>\nList-Id: <dev.lists.example.org>\n"
               "Precedence: list\nSubject: Re: retries\n",
               "With this patch the message could not be delivered: user unknown.\n")
    assert run(msg).kind == Kind.AUTO_REPLY


def test_a_raw_header_with_escapes_and_other_text_never_raises() -> None:
    msg = Message()
    msg["Subject"] = "\x1b$B résumé"  # not ASCII: left as it is
    assert "résumé" in decoded_header(msg, "Subject")


@pytest.mark.parametrize(
    "body",
    [
        "message " + "x" * 200_000 + " was rejected",
        ("your message to " + "a" * 60 + "@" + "b." * 40 + "\n") * 500,
        "{" + '"a": [' * 5_000,
        '[{"event": "bounce", "email": "a@b.example"}' + ', {"event": "bounce"}' * 20_000 + "]",
    ],
    ids=["long-sentence", "many-addresses", "deep-json", "many-records"],
)
def test_pathological_notices_are_read_without_error(body: str) -> None:
    """Bounded reads (the patterns are linear, the JSON depth and records capped);
    how long they take is measured by ``make bench``, not here."""
    msg = mail("From: parents-owner@lists.example.org\nSubject: Rejected posting\n", body)
    assert run(msg).kind in (Kind.BOUNCE, Kind.AUTO_REPLY)
    assert isinstance(parse_bounce(msg).recipients, tuple)
    list_notice_kind(msg)
    service_notice(msg)


def test_a_platforms_noreply_saying_rejected_is_no_list_notice() -> None:
    """A platform answers an escalation from ``noreply@``: its words are not a list's."""
    msg = mail("From: Trust and Safety <noreply@platform.example.com>\n"
               "Subject: Your report was rejected\n",
               "Your report was rejected: the content requires approval by a reviewer.\n")
    assert run(msg).kind == Kind.NORMAL
