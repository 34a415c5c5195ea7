"""parse_message: headers, bodies and attachments from hand-written mail."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import os
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import mailroom.intake.message
from mailroom.errors import MailError
from mailroom.intake.htmltext import html_to_text
from mailroom.intake.message import parse_message
from mailroom.mailtypes import Address, ParsedMessage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def parse_fixture(name: str) -> ParsedMessage:
    return parse_message((FIXTURES / name).read_bytes())


def parse_headers(*lines: bytes, body: bytes = b"body\r\n") -> ParsedMessage:
    """A minimal message with the given header lines (CRLF line ends)."""
    return parse_message(b"\r\n".join(lines) + b"\r\n\r\n" + body)


# ---------------------------------------------------------------- headers

ENCODED_SUBJECTS = [
    ("utf8-base64", b"=?utf-8?B?0JbQsNC70L7QsdCwINC90LAg0LLQuNC00LXQvg==?=", "Жалоба на видео"),
    ("gb2312", b"=?gb2312?B?1tDOxLLiytQ=?=", "中文测试"),
    ("iso-2022-jp", b"=?iso-2022-jp?B?GyRCRnxLXDhsJE43b0w+GyhC?=", "日本語の件名"),
    ("koi8-r", b"=?koi8-r?B?8NLJ18XUIM3J0g==?=", "Привет мир"),
    ("latin1-q", b"=?iso-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln"),
    ("windows-1252", b"=?windows-1252?B?gCB1bmQgR3L832U=?=", "€ und Grüße"),
    ("lower-case-q", b"=?UTF-8?q?caf=C3=A9?=", "café"),
    ("mixed-with-text", b"Re: =?utf-8?q?caf=C3=A9?= (2)", "Re: café (2)"),
    ("adjacent-words-join", b"=?utf-8?q?a?=   =?utf-8?q?b?=", "ab"),
    ("split-multibyte", b"=?utf-8?B?44GC4w==?= =?utf-8?B?gorjgYzjgajjgYY=?=", "ありがとう"),
    ("rfc2231-language", b"=?utf-8*en?q?hello?=", "hello"),
    ("unknown-charset", b"=?x-unknown?q?caf=C3=A9?=", "café"),
    ("bogus-charset-and-padding", b"=?NONE?B?VEVTVA=?=", "TEST"),
    ("unsafe-codec-refused", b"=?unicode_escape?q?=5Cud800?=", "\\ud800"),
    ("not-an-encoded-word", b"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
    ("folded", b"line one\r\n\tline two", "line one line two"),
    ("controls-folded-to-spaces", b"a=?utf-8?q?b=0D=0Ac=00d?=", "ab c d"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [c[1:] for c in ENCODED_SUBJECTS], ids=[c[0] for c in ENCODED_SUBJECTS]
)
def test_subject_is_decoded(raw: bytes, expected: str) -> None:
    assert parse_headers(b"From: a@example.org", b"Subject: " + raw).subject == expected


RAW_8BIT_SUBJECTS = [
    ("utf-8", "Grüße – “hi”".encode(), None, "Grüße – “hi”"),
    ("windows-1252", b"Gr\xfc\xdfe \x96 \x93hi\x94", None, "Grüße – “hi”"),
    ("latin-1-undefined-in-1252", b"caf\xe9 \x81", None, "café \x81"),
    ("body-charset-hint", "Привет".encode("koi8-r"), b"koi8-r", "Привет"),
    ("gb2312-hint", "邮件传输失败".encode("gb2312"), b"gb2312", "邮件传输失败"),
]


@pytest.mark.parametrize(
    ("raw", "charset", "expected"),
    [c[1:] for c in RAW_8BIT_SUBJECTS],
    ids=[c[0] for c in RAW_8BIT_SUBJECTS],
)
def test_raw_8bit_subject_is_decoded(raw: bytes, charset: bytes | None, expected: str) -> None:
    lines = [b"From: a@example.org", b"Subject: " + raw]
    if charset:
        lines.append(b"Content-Type: text/plain; charset=" + charset)
    assert parse_headers(*lines).subject == expected


def test_undeclared_latin1_headers_and_body() -> None:
    parsed = parse_fixture("latin1-undeclared.eml")
    assert parsed.subject == "Grüße – “Beschwerde”"
    assert parsed.sender == Address("rene.mueller@example.org", "René Müller")
    assert parsed.text == "Ich möchte ein Video melden – es ist „schlimm“.\nGrüße, René\n"


ADDRESS_CASES = [
    ("lower-cased", b"To: Alice <Alice@Example.ORG>", [Address("alice@example.org", "Alice")]),
    (
        "quoted-comma",
        b'To: "Smith, J" <j@example.com>, k@example.com',
        [Address("j@example.com", "Smith, J"), Address("k@example.com")],
    ),
    (
        "encoded-name",
        b"To: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>",
        [Address("zoe@example.org", "Zoë")],
    ),
    (
        "group",
        b"To: friends: a@example.org, b@example.org;, undisclosed-recipients:;",
        [Address("a@example.org"), Address("b@example.org")],
    ),
    ("unclosed-angle", b"To: Name <a@example.org", [Address("a@example.org", "Name")]),
    (
        "semicolon-list",
        b"To: a@example.org; b@example.org",
        [Address("a@example.org"), Address("b@example.org")],
    ),
    (
        "encoded-word-cannot-smuggle-an-address",
        b"To: =?utf-8?q?Boss_<boss@bank.example>?= <attacker@evil.example>",
        [Address("attacker@evil.example")],
    ),
    (
        "encoded-comma-stays-in-the-name",
        b"To: =?utf-8?q?boss@bank.example=2C_?= <attacker@evil.example>",
        [Address("attacker@evil.example", "boss@bank.example,")],
    ),
    (
        "utf8-headers",
        "To: Jöhn <jöhn@mächine.example>".encode(),
        [Address("jöhn@mächine.example", "Jöhn")],
    ),
    (
        "name-with-newline",
        b"To: =?utf-8?q?A=0AB?= <ab@example.org>",
        [Address("ab@example.org", "A B")],
    ),
    ("bare-address-among-words", b"To: Big Bug bb@bug.example", [Address("bb@bug.example")]),
    ("encoded-word-is-not-an-address", b"To: =?utf-8?q?boss@bank.example?=", []),
    ("address-literal", b"To: a@[192.0.2.1]", [Address("a@[192.0.2.1]")]),
    ("empty", b"To: ", []),
    ("null", b"To: <>", []),
]


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in ADDRESS_CASES], ids=[c[0] for c in ADDRESS_CASES]
)
def test_address_lists(line: bytes, expected: list[Address]) -> None:
    assert list(parse_headers(b"From: x@example.org", line).to) == expected


def test_sender_cc_and_reply_to() -> None:
    parsed = parse_headers(
        b"From: Sam <SAM@example.org>",
        b"Cc: c@example.org",
        b"Cc: d@example.org",
        b"Reply-To: Desk <desk@example.org>",
    )
    assert parsed.sender == Address("sam@example.org", "Sam")
    assert parsed.cc == (Address("c@example.org"), Address("d@example.org"))
    assert parsed.reply_to == (Address("desk@example.org", "Desk"),)


def test_sender_falls_back_to_the_sender_header() -> None:
    parsed = parse_headers(b'From: "System" <>', b"Sender: owner@lists.example.org")
    assert parsed.sender == Address("owner@lists.example.org")


def test_no_sender() -> None:
    assert parse_headers(b"Subject: nobody").sender is None


ID_CASES = [
    ("plain", b"Message-ID: <abc@example.org>", "abc@example.org"),
    ("spaces-inside", b"Message-ID:   <  abc@example.org  >", "abc@example.org"),
    ("no-brackets", b"Message-ID: abc@example.org", "abc@example.org"),
    ("no-at-sign", b"Message-ID: <1234.5678>", "1234.5678"),
    ("missing", b"X-Nothing: 1", None),
    ("empty", b"Message-ID: ", None),
]


@pytest.mark.parametrize(
    ("line", "expected"), [c[1:] for c in ID_CASES], ids=[c[0] for c in ID_CASES]
)
def test_message_id_without_brackets(line: bytes, expected: str | None) -> None:
    assert parse_headers(b"From: a@example.org", line).message_id == expected


REFERENCE_CASES = [
    ("one", b"<a@h>", ("a@h",)),
    ("several-folded", b"<a@h>\r\n <b@h>\r\n\t<c@h>", ("a@h", "b@h", "c@h")),
    ("duplicates-dropped", b"<a@h> <b@h> <a@h>", ("a@h", "b@h")),
    ("junk-around", b'Your message of "Mon, 1 Jan 2024" <a@h> (Fred)', ("a@h",)),
    ("bare-ids", b"a@h b@h", ("a@h", "b@h")),
    ("no-separator", b"<a@h><b@h>", ("a@h", "b@h")),
    ("nothing-useful", b"(none)", ()),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in REFERENCE_CASES], ids=[c[0] for c in REFERENCE_CASES]
)
def test_references_and_in_reply_to_are_split_into_ids(
    value: bytes, expected: tuple[str, ...]
) -> None:
    parsed = parse_headers(b"In-Reply-To: " + value, b"References: " + value)
    assert parsed.references == expected
    assert parsed.in_reply_to == expected


DATE_CASES = [
    ("with-zone", b"Mon, 3 Feb 2025 09:15:00 +0100", datetime(2025, 2, 3, 8, 15, tzinfo=UTC)),
    ("no-zone-means-utc", b"Mon, 3 Feb 2025 09:15:00", datetime(2025, 2, 3, 9, 15, tzinfo=UTC)),
    ("minus-zero", b"Mon, 3 Feb 2025 09:15:00 -0000", datetime(2025, 2, 3, 9, 15, tzinfo=UTC)),
    ("obsolete-zone", b"3 Feb 2025 09:15:00 EST", datetime(2025, 2, 3, 14, 15, tzinfo=UTC)),
    ("folded", b"Mon, 3 Feb 2025\r\n 09:15:00 +0000", datetime(2025, 2, 3, 9, 15, tzinfo=UTC)),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in DATE_CASES], ids=[c[0] for c in DATE_CASES]
)
def test_date_is_timezone_aware(value: bytes, expected: datetime) -> None:
    date = parse_headers(b"Date: " + value).date
    assert date is not None and date.tzinfo is not None
    assert date == expected


def test_date_keeps_the_senders_offset() -> None:
    date = parse_headers(b"Date: Mon, 3 Feb 2025 09:15:00 +0530").date
    assert date is not None and date.utcoffset() == timedelta(hours=5, minutes=30)
    assert date.tzinfo == timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "value",
    [b"yesterday at noon", b"", b"Mon, 99 Foo 2025 99:99:99 +9999", b"<HR>"],
    ids=["words", "empty", "out-of-range", "html"],
)
def test_unparseable_date_is_none(value: bytes) -> None:
    assert parse_headers(b"Subject: x", b"Date: " + value).date is None


def test_headers_are_lower_case_decoded_and_keep_every_value() -> None:
    parsed = parse_headers(
        b"Received: from one",
        b"Received: from two",
        b"X-Note: =?utf-8?q?caf=C3=A9?=",
        b"X-Folded: a\r\n b",
        b"Subject: s",
    )
    assert parsed.headers["received"] == ["from one", "from two"]
    assert parsed.headers["x-note"] == ["café"]
    assert parsed.headers["x-folded"] == ["a b"]
    assert parsed.header("X-NOTE") == "café"
    assert parsed.header("x-missing") is None


def test_subject_and_names_never_contain_cr_lf_or_nul() -> None:
    parsed = parse_headers(
        b"From: =?utf-8?q?Eve=0D=0ABcc:_x=00?= <eve@example.org>",
        b"Subject: =?utf-8?q?one=0D=0Atwo=00three?=",
    )
    for value in (parsed.subject, parsed.sender.name if parsed.sender else ""):
        assert not set(value) & {"\r", "\n", "\x00"}
    assert parsed.subject == "one two three"


# ---------------------------------------------------------------- bodies


def test_plain_text_body() -> None:
    parsed = parse_headers(b"Subject: s", body=b"Hello\r\nWorld\r\n")
    assert parsed.text == "Hello\nWorld\n"
    assert parsed.html is None
    assert parsed.content_type == "text/plain"
    assert not parsed.text_from_html


def test_html_only_message_gives_text_with_paragraphs_breaks_and_urls() -> None:
    parsed = parse_fixture("html-only.eml")
    assert parsed.text_from_html
    assert parsed.html is not None and "<p>Hello,</p>" in parsed.html
    assert parsed.text == (
        "Hello,\n\n"
        "Someone posted this video (https://video.example.com/watch?v=abc123&t=5) of me.\n"
        "It is still online.\n"
        "Please help.\n\n"
        "Also: https://social.example.net/p/42\n\n"
        "Café owner\n"
    )
    for hidden in ("color: red", "script text", "ignored title"):
        assert hidden not in parsed.text


def test_alternative_prefers_plain_and_keeps_html() -> None:
    parsed = parse_fixture("alternative.eml")
    assert parsed.text == "The plain version."
    assert parsed.html == "<p>The <b>HTML</b> version.</p>"
    assert not parsed.text_from_html
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("invite.ics", "text/calendar")
    ]


def test_mixed_inline_texts_are_joined_and_the_rest_are_attachments() -> None:
    parsed = parse_fixture("mixed-inline-texts.eml")
    assert parsed.text == "Here is what I saw:\n\nAnd that is all.\n"
    image, pdf = parsed.attachments
    assert (image.filename, image.content_type, image.inline) == ("image.png", "image/png", True)
    assert image.data.startswith(b"\x89PNG")
    assert (pdf.filename, pdf.content_type, pdf.inline) == ("report.pdf", "application/pdf", False)
    assert pdf.data == b"%PDF-1.4\n% fake pdf for tests\n%%EOF\n"
    assert pdf.size == len(pdf.data) == 36
    assert pdf.sha256 == hashlib.sha256(pdf.data).hexdigest()


def test_declared_body_charset_is_used() -> None:
    body = "Привет, мир".encode("koi8-r")
    parsed = parse_headers(b"Content-Type: text/plain; charset=koi8-r", body=body)
    assert parsed.text == "Привет, мир"


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        (b"x-no-such-charset", "café".encode(), "café"),
        (b"x-no-such-charset", b"caf\xe9", "café"),
        (b"utf-8", b"caf\xe9 \x93q\x94", "café “q”"),
        (b"us-ascii", "naïve".encode(), "naïve"),
        (b"rot13", b"plain", "plain"),
    ],
    ids=[
        "unknown-utf8",
        "unknown-latin1",
        "utf8-that-is-cp1252",
        "ascii-that-is-utf8",
        "not-a-text-codec",
    ],
)
def test_wrong_or_unknown_body_charsets_fall_back(
    charset: bytes, body: bytes, expected: str
) -> None:
    parsed = parse_headers(b"Content-Type: text/plain; charset=" + charset, body=body)
    assert parsed.text == expected


def test_nul_bytes_are_removed_from_text() -> None:
    assert parse_headers(b"Subject: s", body=b"a\x00b\r\n").text == "ab\n"


def test_base64_and_quoted_printable_bodies() -> None:
    encoded = base64.b64encode("Grüße".encode())
    b64 = parse_headers(
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64 ",
        body=encoded,
    )
    qp = parse_headers(
        b"Content-Type: text/plain; charset=iso-8859-1",
        b"Content-Transfer-Encoding: quoted-printable;",
        body=b"Gr=FC=DFe=\r\n!",
    )
    assert (b64.text, qp.text) == ("Grüße", "Grüße!")


# ---------------------------------------------------------------- attachments


def test_rfc2231_and_encoded_word_attachment_names() -> None:
    names = [a.filename for a in parse_fixture("rfc2231-names.eml").attachments]
    assert names == ["新しい テキスト.txt", "Grüße.txt", "Привет.txt"]


def test_hostile_attachment_names_are_sanitised() -> None:
    attachments = parse_fixture("hostile-names.eml").attachments
    names = [a.filename for a in attachments]
    assert names[0] == "passwd"
    assert names[1] == "evil.exe"
    assert len(names[2]) == 200 and names[2].endswith(".pdf")
    assert names[3] == "invoicefdp.exe"
    assert names[4] == "image.png"
    assert names[5] == "_CON.txt"
    assert attachments[0].data == b"root:x:0:0"


def test_forwarded_message_is_one_attachment_and_not_body_text() -> None:
    parsed = parse_fixture("forwarded.eml")
    assert parsed.text == "Forwarding the message below."
    (forwarded,) = parsed.attachments
    assert (forwarded.filename, forwarded.content_type) == (
        "You will regret this.eml",  # an enclosed message without a name: its subject
        "message/rfc822",
    )
    inner = parse_message(forwarded.data)
    assert inner.subject == "You will regret this"
    assert inner.sender == Address("stranger@example.com", "Stranger")
    assert inner.text == "Inner text that must stay inside the forwarded message."
    assert [a.filename for a in inner.attachments] == ["inner.jpg"]


def test_base64_encoded_forwarded_message_is_decoded() -> None:
    inner = b"From: x@example.org\r\nSubject: inner\r\n\r\nhi\r\n"
    parsed = parse_headers(
        b"Content-Type: multipart/mixed; boundary=B",
        body=b"--B\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner).replace(b"\n", b"\r\n")
        + b"--B--\r\n",
    )
    (forwarded,) = parsed.attachments
    assert parse_message(forwarded.data).subject == "inner"


def test_uuencoded_file_in_the_body_becomes_an_attachment() -> None:
    parsed = parse_fixture("uuencoded.eml")
    (attachment,) = parsed.attachments
    assert attachment.filename == "evidence.txt"
    assert attachment.data == b"Hello from a uuencoded file!\n" * 3
    assert "begin 644" not in parsed.text
    assert parsed.text.startswith("Text before.") and parsed.text.endswith("Text after.\n")


def test_begin_line_without_uuencoded_data_stays_text() -> None:
    body = b"begin 644 is how it starts\r\nbut this is prose.\r\nend\r\n"
    parsed = parse_headers(b"Subject: s", body=body)
    assert parsed.attachments == ()
    assert parsed.text == "begin 644 is how it starts\nbut this is prose.\nend\n"


def test_leaf_parts_without_names_get_names_from_their_type() -> None:
    parsed = parse_headers(
        b"Content-Type: multipart/mixed; boundary=B",
        body=b"--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--B\r\nContent-Type: image/jpeg\r\n\r\nJPEG\r\n"
        b"--B\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n"
        b"--B\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n"
        b"<p>x</p>\r\n--B--\r\n",
    )
    assert [a.filename for a in parsed.attachments] == [
        "image.jpg",
        "attachment.pdf",
        "attachment.html",
    ]
    assert parsed.text == "body"
    assert parsed.html is None


def test_text_inside_an_attached_multipart_is_not_body_text() -> None:
    parsed = parse_headers(
        b"Content-Type: multipart/mixed; boundary=A",
        body=b"--A\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
        b"--A\r\nContent-Type: multipart/alternative; boundary=B\r\n"
        b"Content-Disposition: attachment\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nattached plain\r\n"
        b"--B\r\nContent-Type: text/html\r\n\r\n<p>attached html</p>\r\n--B--\r\n--A--\r\n",
    )
    assert parsed.text == "the body"
    assert parsed.html is None
    assert [a.data for a in parsed.attachments] == [b"attached plain", b"<p>attached html</p>"]


def test_part_hidden_in_the_epilogue_by_a_reused_boundary_is_recovered() -> None:
    parsed = parse_headers(
        b"Content-Type: multipart/mixed; boundary=B",
        body=b"--B\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nplain\r\n--B--\r\n\r\n"
        b"--B\r\nContent-Type: image/gif; name=x.gif\r\n\r\nGIF\r\n--B--\r\n",
    )
    assert "x.gif" in [a.filename for a in parsed.attachments]
    assert "parts-in-epilogue" in parsed.defects


# ---------------------------------------------------------------- robustness


def test_defects_are_reported_as_short_names() -> None:
    parsed = parse_headers(
        b"Content-Type: multipart/mixed; boundary=NOPE", body=b"no boundary here\r\n"
    )
    assert "start-boundary-not-found" in parsed.defects
    assert parsed.content_type == "multipart/mixed"


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n\t\r\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100],
    ids=["empty", "blank", "outlook-msg"],
)
def test_nothing_to_parse_raises_mail_error(raw: bytes) -> None:
    with pytest.raises(MailError):
        parse_message(raw)


def deeply_nested(depth: int) -> bytes:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    return head + b"Content-Type: text/plain\r\n\r\ndeep\r\n"


NOT_MAIL = [
    ("binary", bytes(range(256)) * 4),
    ("only-colon", b":"),
    ("no-headers", b"just some words\r\nand more"),
    ("a-letter-piped-in", b"Dear helpline,\n\nSomeone posted this: https://x.com/a\n"),
    ("a-note-with-a-colon", b"Note: call me\nback later\n"),
]


@pytest.mark.parametrize("raw", [g[1] for g in NOT_MAIL], ids=[g[0] for g in NOT_MAIL])
def test_input_that_is_not_mail_at_all_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(MailError, match="not an email message: no mail header"):
        parse_message(raw)


GARBAGE = [
    ("header-no-value", b"From:\r\nTo:\r\nSubject:\r\nDate:\r\n\r\n"),
    ("bom-and-blank-lines", b"\xef\xbb\xbf\r\n\r\nSubject: bom\r\n\r\nx"),
    ("lone-cr", b"Subject: a\rb\r\r\rbody"),
    ("nested-1000", deeply_nested(1000)),
    ("message-rfc822-empty", b"Content-Type: message/rfc822\r\n\r\n"),
    ("multipart-no-boundary", b"Content-Type: multipart/mixed\r\n\r\n--x\r\nhello"),
    ("bad-base64", b"Content-Transfer-Encoding: base64\r\n\r\n!!!=A"),
    ("huge-header", b"Subject: " + b"=?utf-8?q?a?= " * 20000 + b"\r\n\r\nx"),
    ("unknown-cte", b"Content-Transfer-Encoding: x-weird\r\n\r\nbody"),
    (
        "uuencode-cte",
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n#86)C\r\n`\r\nend\r\n",
    ),
    (
        "surrogate-names",
        b"Content-Type: text/plain; name=\xff\xfe\r\nContent-Disposition: attachment\r\n\r\nx",
    ),
]


@pytest.mark.parametrize("raw", [g[1] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_broken_input_still_parses(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    for text in (parsed.subject, parsed.text, *(a.filename for a in parsed.attachments)):
        text.encode("utf-8")  # no lone surrogates


def test_deep_nesting_is_cut_and_reported() -> None:
    assert "nesting-too-deep" in parse_message(deeply_nested(200)).defects


def test_bom_and_leading_blank_lines_are_skipped() -> None:
    assert parse_message(b"\xef\xbb\xbf\r\n\r\nSubject: bom\r\n\r\nx").subject == "bom"


def test_internal_error_falls_back_to_a_minimal_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes) -> ParsedMessage:
        raise RuntimeError("bug")

    monkeypatch.setattr(mailroom.intake.message, "_parse", broken)
    parsed = parse_message(b"From: Ann <ann@example.org>\r\nSubject: hi\r\n\r\nthe body\r\n")
    assert parsed.defects == ("parser-fallback: RuntimeError",)
    assert (parsed.subject, parsed.text) == ("hi", "the body\n")
    assert parsed.sender == Address("ann@example.org", "Ann")


def test_a_large_attachment_is_not_copied_many_times() -> None:
    data = os.urandom(5 * 1024 * 1024)
    raw = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        b"see attached\r\n--B\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
        + b"--B--\r\n"
    )
    tracemalloc.start()
    try:
        parsed = parse_message(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed.attachments[0].data == data
    # message_from_bytes alone peaks near 10 copies; chunked feeding stays ~4.
    assert peak < 5 * len(data)


def test_parse_mime_gives_the_same_tree_as_the_standard_library() -> None:
    raw = (FIXTURES / "forwarded.eml").read_bytes()
    ours = mailroom.intake.message.parse_mime(raw, chunk_size=7)
    theirs = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert ours.as_bytes() == theirs.as_bytes()


# ---------------------------------------------------------------- html_to_text

HTML_CASES = [
    ("paragraphs", "<p>one</p><p>two</p>", "one\n\ntwo\n"),
    ("line-breaks", "a<br>b<br/>c", "a\nb\nc\n"),
    ("divs", "<div>a</div><div>b</div>", "a\nb\n"),
    (
        "link-text-and-url",
        '<a href="https://x.example/v/1">watch</a>',
        "watch (https://x.example/v/1)\n",
    ),
    ("link-same-as-text", '<a href="https://x.example/">x.example</a>', "x.example\n"),
    ("image-link", '<a href="http://x.example/i"><img src="cid:1"></a>', "(http://x.example/i)\n"),
    ("mailto-not-shown", '<a href="mailto:a@b.example">write</a>', "write\n"),
    ("style-script-dropped", "<style>p{}</style><script>x()</script><p>kept</p>", "kept\n"),
    ("comment-dropped", "<p>a<!-- secret -->b</p>", "ab\n"),
    ("entities", "<p>caf&eacute; &amp; &lt;tag&gt;</p>", "café & <tag>\n"),
    ("list", "<ul><li>one</li><li>two</li></ul>", "  * one\n  * two\n"),
    ("xml-declaration", '<?xml version="1.0"?><html><body><p>x</p></body></html>', "x\n"),
    ("no-tags", "plain words", "plain words\n"),
    ("empty", "   ", ""),
    ("nul", "<p>a\x00b</p>", "ab\n"),
]


@pytest.mark.parametrize(
    ("html", "expected"), [c[1:] for c in HTML_CASES], ids=[c[0] for c in HTML_CASES]
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected
