"""Headers as mail servers and people's software really write them.

Three classes, each with its fixtures (``tests/fixtures/wild``) and hand-made
cases: a header block broken by a lost fold or a stray line, raw 8-bit header
text in a legacy charset, and sender addresses as people's software writes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.errors import MailError
from mailroom.intake.charsets import legacy_charset, oddness
from mailroom.intake.headerblock import read_header
from mailroom.intake.limits import header_size
from mailroom.intake.message import (
    parse_message,
    parse_mime,
    repair_address_list,
    with_envelope_sender,
)
from mailroom.mailtypes import Address, ParsedMessage

WILD = Path(__file__).resolve().parents[1] / "fixtures" / "wild"


def parse_wild(name: str) -> ParsedMessage:
    return parse_message((WILD / name).read_bytes())


# ---------------------------------------------------------------- the header block

BROKEN_BLOCKS = [
    ("received-lost-fold.eml", "Video of my son being shared",
     Address("amira.k@example.net", "Amira Khan"), {"fold-without-blank"}),
    ("stray-line-before-header.eml", "Fake account using my daughter's photos",
     Address("tom.baker@example.org", "Tom Baker"), {"stray-line-before-header"}),
    ("stray-line-and-lost-folds.eml", "Threats in a group chat",
     Address("lee.wong@example.com", "Lee Wong"),
     {"stray-line-before-header", "fold-without-blank", "blank-before-colon"}),
]


@pytest.mark.parametrize(("name", "subject", "sender", "repairs"), BROKEN_BLOCKS,
                         ids=[b[0] for b in BROKEN_BLOCKS])
def test_a_broken_header_block_keeps_from_and_subject(
    name: str, subject: str, sender: Address, repairs: set[str]
) -> None:
    parsed = parse_wild(name)
    assert (parsed.subject, parsed.sender) == (subject, sender)
    assert repairs <= set(parsed.defects)
    assert parsed.message_id is not None
    assert "From:" not in parsed.text and "Received" not in parsed.text


def test_lost_folds_join_the_field_above() -> None:
    parsed = parse_wild("received-lost-fold.eml")
    first = parsed.headers["received"][0]
    assert first.startswith("from mail.example.net") and "for <report@helpline.example>" in first
    assert len(parsed.headers["received"]) == 2
    assert parsed.text == "Someone is sharing a video of my son.\n"


def test_a_to_list_that_lost_its_fold_keeps_every_address() -> None:
    parsed = parse_wild("stray-line-and-lost-folds.eml")
    assert [a.addr for a in parsed.to] == ["report@helpline.example", "second@helpline.example"]


def test_the_classifier_reads_the_same_repaired_tree() -> None:
    tree = parse_mime((WILD / "stray-line-before-header.eml").read_bytes())
    assert tree["subject"] == "Fake account using my daughter's photos"


def test_header_size_counts_the_repaired_lines() -> None:
    raw = (WILD / "received-lost-fold.eml").read_bytes()
    assert header_size(raw) == raw.index(b"\r\n\r\n") + 2


UNREPAIRED = [
    # A header that runs into the body without its empty line: the body stays body.
    ("no-separator",
     b"Subject: a\r\nThis is an invalid header\r\nAnotherHeader: b\r\n\r\nBody\r\n"),
    ("plain-text-line-then-body", b"From: a@example.org\r\nHello there\r\n\r\nText\r\n"),
    ("too-many-stray-lines", b"one\r\ntwo\r\nthree\r\nfour\r\nFrom: a@example.org\r\n\r\nx\r\n"),
    ("well-formed", b"From: a@example.org\r\nSubject: x\r\n\tfolded\r\n\r\nbody\r\n"),
    ("broken-date-is-no-field", b"From: a@example.org\r\nText\r\n10:00:00 +0000\r\n\r\nx\r\n"),
]


@pytest.mark.parametrize("raw", [u[1] for u in UNREPAIRED], ids=[u[0] for u in UNREPAIRED])
def test_what_is_not_clearly_a_broken_header_is_left_as_it_was(raw: bytes) -> None:
    assert read_header(raw) is None


def test_the_repaired_block_stands_for_the_bytes_it_replaces() -> None:
    raw = b"Stray\r\nFrom: a@example.org\r\nSubject : x\r\n\r\nbody\r\n"
    block = read_header(raw)
    assert block is not None
    assert block.head == b"From: a@example.org\r\nSubject: x\r\n"
    assert raw[block.end :] == b"\r\nbody\r\n"
    assert parse_message(raw).subject == "x"


# ---------------------------------------------------------------- raw 8-bit header text

LEGACY_HEADERS = [
    ("gbk-headers-gb2312-body.eml", "关于我孩子的视频举报", "张伟"),
    ("gbk-headers-ascii-body.eml", "截图 视频被转发", "李娜"),
    ("gb18030-header-latin1-body.eml", "邮件传输失败", ""),  # a wrong hint is overruled
    ("shift-jis-headers.eml", "動画の削除について", "田中 花子"),
    ("iso-2022-jp-raw-header.eml", "いじめの動画について", "鈴木"),
    ("windows-1251-headers.eml", "Жалоба на видео", "Иван Петров"),
    ("windows-1250-headers.eml", "Zażółć: nękanie w szkole", "Łukasz Żółw"),
    ("latin1-headers-latin1-body.eml", "Réponse: vidéo supprimée?", "Hélène Dupré"),
    ("windows-1253-headers.eml", "Καταγγελία βίντεο", "Νίκος"),
    ("windows-1255-header-with-hint.eml", "תלונה על סרטון", ""),
    ("big5-headers.eml", "影片檢舉", "陳大文"),
]


@pytest.mark.parametrize(("name", "subject", "display_name"), LEGACY_HEADERS,
                         ids=[c[0] for c in LEGACY_HEADERS])
def test_raw_8bit_headers_in_legacy_charsets_are_read(
    name: str, subject: str, display_name: str
) -> None:
    parsed = parse_wild(name)
    assert parsed.subject == subject
    assert parsed.sender is not None and parsed.sender.name == display_name
    assert "\ufffd" not in parsed.subject + parsed.sender.name


# One value alone, no hint: the shortest texts are the hardest to read.
SHORT_VALUES = [
    ("gbk", "邮件传输失败", "gbk"),
    ("gbk-name", "张伟", "gbk"),
    ("gbk-file-name", "截图 2024.png", "gbk"),
    ("shift-jis", "お問い合わせの件", "cp932"),
    ("shift-jis-name", "田中", "cp932"),
    ("shift-jis-file-name", "資料 最終版.xlsx", "cp932"),
    ("windows-1251", "Иван Петров", "cp1251"),
    ("koi8-r", "Жалоба на видео", "koi8_r"),
    ("windows-1250", "Zażółć gęślą jaźń", "cp1250"),
    ("windows-1252", "Grüße aus Köln", "cp1252"),
    ("latin-1", "été à Noël", "latin-1"),
    ("windows-1253", "Καταγγελία βίντεο", "cp1253"),
    ("windows-1256", "شكوى فيديو", "cp1256"),
    ("big5", "影片檢舉", "big5"),
    ("euc-kr", "동영상 신고", "euc-kr"),
]


@pytest.mark.parametrize(("text", "codec"), [c[1:] for c in SHORT_VALUES],
                         ids=[c[0] for c in SHORT_VALUES])
def test_a_short_value_is_read_by_detection(text: str, codec: str) -> None:
    data = text.encode(codec)
    assert data.decode(legacy_charset([data], None)) == text


@pytest.mark.parametrize(("text", "codec", "hint"), [
    ("תלונה על סרטון", "cp1255", "cp1255"),
    ("Şikayet görüntü", "cp1254", "cp1254"),
], ids=["hebrew", "turkish"])
def test_the_body_charset_decides_what_detection_cannot(text: str, codec: str, hint: str) -> None:
    data = text.encode(codec)
    assert data.decode(legacy_charset([data], hint)) == text


def test_a_wrong_reading_is_odd_and_a_right_one_is_not() -> None:
    for right in ("Grüße aus Köln, été", "Жалоба на видео", "関于我孩子", "お問い合わせ", "iPhone"):
        assert oddness(right) == 0, right
    for mojibake in ("GrÃ¼ÃŸe", "Æàëîáà íà âèäåî", "ÕÅÎ°", "벍됪궻랁", "Stí¾nost", "caf\x81"):
        assert oddness(mojibake) > 0, mojibake


def test_utf8_is_read_as_utf8_first() -> None:
    parsed = parse_message("From: Zoë <z@example.org>\r\nSubject: Grüße 你好\r\n\r\nx\r\n".encode())
    assert parsed.subject == "Grüße 你好"
    assert parsed.sender == Address("z@example.org", "Zoë")


# ---------------------------------------------------------------- sender addresses

SENDERS = [
    ("trailing-dot", b"From: Jane Doe <jane@example.com.>",
     Address("jane@example.com", "Jane Doe")),
    ("bare-trailing-dot", b"From: jane@example.com.", Address("jane@example.com")),
    ("spaces-in-local-part", b"From: John Smith <john smith@example.com>",
     Address('"john smith"@example.com', "John Smith")),
    ("quoted-local-part", b'From: "john smith"@example.com', Address('"john smith"@example.com')),
    ("quoted-local-part-named", b'From: John <"john  smith"@example.com>',
     Address('"john  smith"@example.com', "John")),
    ("stray-closing-angle", b"From: John <john@example.com>>", Address("john@example.com", "John")),
    ("stray-angle-bare", b"From: john@example.com>", Address("john@example.com")),
    ("unclosed-angle", b"From: John Smith <john@example.com",
     Address("john@example.com", "John Smith")),
    ("comma-in-name", b'From: "Smith, John" <John.Smith@Example.COM>',
     Address("john.smith@example.com", "Smith, John")),
    ("angle-in-quoted-name", b'From: "a>b" <ab@example.com>', Address("ab@example.com", "a>b")),
    ("address-literal", b"From: x@[192.0.2.1]", Address("x@[192.0.2.1]")),
    ("name-in-a-comment", b"From: jo@example.org (Jo Bloggs)",
     Address("jo@example.org", "Jo Bloggs")),
]


@pytest.mark.parametrize(("line", "expected"), [s[1:] for s in SENDERS],
                         ids=[s[0] for s in SENDERS])
def test_sender_addresses_as_people_write_them(line: bytes, expected: Address) -> None:
    parsed = parse_message(line + b"\r\nSubject: x\r\n\r\nbody\r\n")
    assert parsed.sender == expected


def test_repair_leaves_quoted_text_and_encoded_words_alone() -> None:
    value = '"Doe, J. <x>" <j@example.org>, =?utf-8?q?a=3E?= <k@example.org.>'
    assert repair_address_list(value) == (
        '"Doe, J. <x>" <j@example.org>, =?utf-8?q?a=3E?= <k@example.org>')


FALLBACKS = [
    ("sender", [b"Sender: Owner <owner@lists.example.org>"],
     Address("owner@lists.example.org", "Owner")),
    ("reply-to", [b"Reply-To: Pat <pat@example.org>"], Address("pat@example.org", "Pat")),
    ("return-path", [b"Return-Path: <bounce@example.org>"], Address("bounce@example.org")),
    ("order", [b"Return-Path: <rp@example.org>", b"Reply-To: rt@example.org",
               b"Sender: s@example.org"], Address("s@example.org")),
    ("empty-from", [b"From: ", b"Reply-To: rt@example.org"], Address("rt@example.org")),
    ("null-return-path", [b"Return-Path: <>"], None),
]


@pytest.mark.parametrize(("lines", "expected"), [f[1:] for f in FALLBACKS],
                         ids=[f[0] for f in FALLBACKS])
def test_a_missing_from_falls_back_in_order(lines: list[bytes], expected: Address | None) -> None:
    parsed = parse_message(b"\r\n".join([b"Subject: no from", *lines]) + b"\r\n\r\nbody\r\n")
    assert parsed.sender == expected


def test_the_envelope_sender_comes_last() -> None:
    parsed = parse_message(b"Subject: no from\r\n\r\nbody\r\n")
    envelope = with_envelope_sender(parsed, "Envelope@Example.org")
    assert envelope.sender == Address("envelope@example.org")
    assert with_envelope_sender(parsed, "").sender is None  # the null sender of a bounce
    named = parse_message(b"From: A <a@example.org>\r\n\r\nbody\r\n")
    assert with_envelope_sender(named, "other@example.org") is named


LINES = st.sampled_from([
    b"From: a@example.org", b"Subject: x", b"Received: from a", b"by b with ESMTP",
    b"---- Original email message ----", b"  folded", b"\tfolded", b"Subject : y",
    b"X-Thing: z", b"10:00:00 +0000", b"Note: body?", b"", b"plain words", b"From b Mon",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=12), st.sampled_from([b"\r\n", b"\n"]))
def test_a_repair_only_ever_replaces_the_header_block(lines: list[bytes], end: bytes) -> None:
    raw = end.join(lines) + end + end + b"body" + end
    block = read_header(raw)
    if block is not None:
        assert block.repairs and 0 < block.end <= raw.index(end + end) + len(end)
        assert raw[block.end :].endswith(b"body" + end)
    try:
        parsed = parse_message(raw)
    except MailError:
        return
    assert not any(d.startswith("parser-fallback") for d in parsed.defects)


def test_a_fold_after_a_broken_line_stays_in_its_place() -> None:
    raw = (b"Received: from a.example\r\nby b.example with ESMTP\r\n\tfor <c@example.org>; x\r\n"
           b"From: d@example.org\r\nSubject: s\r\n\r\nbody\r\n")
    parsed = parse_message(raw)
    assert parsed.headers["received"] == [
        "from a.example by b.example with ESMTP for <c@example.org>; x"]
    assert (parsed.subject, parsed.text) == ("s", "body\n")
