"""Composing outgoing messages: headers that cannot be injected, threads, tags."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.intake.classify import is_our_message_id
from mailroom.mailtypes import Address
from mailroom.outbox.compose import (
    MAX_REFERENCES,
    MESSAGE_ID_PREFIX,
    POLICY,
    _verify_generated_headers,
    bound_references,
    clean_header_text,
    compose_message,
    find_ticket_tag,
    make_message_id,
    make_tag,
    strip_tag,
    tag_subject,
)

HELPLINE = Address("helpline@helpline.example", "Online Safety Helpline")
REQUESTER = Address("jo@school.example", "Jo Bloggs")
TEMPLATE = "[Helpline #{id}]"
# Text that was already decoded once and still looks like an encoded word
# hiding CRLF: the email library would decode it again when the header is set.
INJECTING_WORD = "=?utf-8?q?Hello=0D=0ABcc=3A_victim=40example=2Eorg?="
NESTED_WORD = "=?utf-8?b?PT91dGYtOD9xP0hlbGxvPTBEPTBBQmNjPTNBX3ZpY3RpbT00MGV4YW1wbGU9MkVvcmc/PQ==?="


def compose(**overrides: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "from_addr": HELPLINE,
        "to": [REQUESTER],
        "subject": "[Helpline #7] Your case",
        "text": "Hello Jo,\n\nThank you.\n",
        "message_id": "mailroom.abc@helpline.example",
        "in_reply_to": None,
        "references": [],
        "reply_to": None,
        "auto_submitted": None,
        "loop_token": "helpline@helpline.example",
        "date": datetime(2025, 3, 3, 9, 30, tzinfo=UTC),
    }
    args.update(overrides)
    return compose_message(**args)


def wire(msg: EmailMessage) -> bytes:
    return msg.as_bytes()


def reparse(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(wire(msg), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line[:1] not in " \t"]


# -- headers from hostile mail ---------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Hello\r\nBcc: victim@example.org",
        "Hello\nBcc: victim@example.org",
        "Hello\rBcc: victim@example.org",
        "Hello\x00Bcc: victim@example.org",
        "Hello\u2028Bcc: victim@example.org",
        "Hello\x85Bcc: victim@example.org",
        INJECTING_WORD,
        NESTED_WORD,
    ],
    ids=[
        "crlf",
        "lf",
        "cr",
        "nul",
        "line-separator",
        "next-line",
        "encoded-word-text",
        "nested-encoded-word",
    ],
)
def test_subject_cannot_inject_a_header(subject: str) -> None:
    msg = compose(subject=subject)
    raw = wire(msg)
    assert "bcc" not in header_names(raw)
    parsed = reparse(msg)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


@pytest.mark.parametrize(
    "name",
    [
        'Smith, John "JJ"',
        "evil <attacker@evil.example>",
        "a@b.example, c@d.example",
        "Line\r\nBcc: victim@example.org",
        "Zoë Ångström-Øberg",
        "(comment) \\backslash; semi:colon",
        "",
        INJECTING_WORD,
        f"a, {INJECTING_WORD}",
    ],
    ids=[
        "comma-quotes",
        "angle-brackets",
        "addresses",
        "crlf",
        "non-ascii",
        "specials",
        "empty",
        "encoded-word",
        "encoded-word-in-quotes",
    ],
)
def test_display_names_stay_one_mailbox(name: str) -> None:
    msg = compose(to=[Address("jo@school.example", name)], cc=[Address("cc@school.example", name)])
    parsed = reparse(msg)
    for header, addr in (("To", "jo@school.example"), ("Cc", "cc@school.example")):
        [mailbox] = parsed[header].addresses
        assert mailbox.addr_spec == addr
        assert mailbox.display_name == clean_header_text(name)
    assert parsed["Bcc"] is None
    assert wire(msg).isascii()


@pytest.mark.parametrize(
    "addr",
    ["jo@school.example>, evil@x.example", "jo@school.example\r\nBcc: x@y", "jo school@x", ""],
    ids=["two-addresses", "crlf", "space", "empty"],
)
def test_invalid_addresses_are_refused(addr: str) -> None:
    with pytest.raises(ValueError):
        compose(to=[Address(addr, "Jo")])


def test_non_ascii_domain_is_written_as_idna() -> None:
    parsed = reparse(compose(to=[Address("jo@exämple.org", "Jo")]))
    assert parsed["To"].addresses[0].addr_spec == "jo@xn--exmple-cua.org"


def test_non_ascii_local_part_is_refused() -> None:
    with pytest.raises(ValueError, match="SMTPUTF8"):
        compose(to=[Address("zoë@example.org", "Zoë")])


def test_non_ascii_subject_is_rfc2047_encoded() -> None:
    msg = compose(subject="Zoë’s case – “urgent” 🚨")
    raw = wire(msg)
    assert raw.isascii()
    assert b"=?utf-8?" in raw
    assert reparse(msg)["Subject"] == "Zoë’s case – “urgent” 🚨"


def test_long_subject_is_folded_and_bounded() -> None:
    msg = compose(subject="word " * 200)
    raw = wire(msg)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert len(reparse(msg)["Subject"]) <= 250


# -- the headers compose sets -----------------------------------------------------


def test_standard_headers() -> None:
    parsed = reparse(compose(reply_to=Address("helpline+r-t7-abcdefghij@helpline.example")))
    assert parsed["Message-ID"] == "<mailroom.abc@helpline.example>"
    assert parsed["Date"] == "Mon, 03 Mar 2025 09:30:00 +0000"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["X-Loop"] == "helpline@helpline.example"
    assert parsed["Reply-To"] == "helpline+r-t7-abcdefghij@helpline.example"
    assert parsed["From"] == "Online Safety Helpline <helpline@helpline.example>"
    assert parsed["In-Reply-To"] is None and parsed["References"] is None


def test_date_defaults_to_now() -> None:
    msg = compose(date=None)
    sent = msg["Date"].datetime
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60


@pytest.mark.parametrize(
    ("auto_submitted", "expected"),
    [
        ("auto-replied", {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All",
                          "Precedence": "auto_reply"}),
        ("auto-generated", {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All",
                            "Precedence": "auto_reply"}),
        (None, {"Auto-Submitted": None, "X-Auto-Response-Suppress": None, "Precedence": None}),
        ("no", {"Auto-Submitted": None, "X-Auto-Response-Suppress": None, "Precedence": None}),
    ],
    ids=["auto-replied", "auto-generated", "personal", "explicit-no"],
)  # fmt: skip
def test_automatic_mail_headers(auto_submitted: str | None, expected: dict[str, Any]) -> None:
    parsed = reparse(compose(auto_submitted=auto_submitted))
    assert {name: parsed[name] for name in expected} == expected


@pytest.mark.parametrize(
    "message_id",
    ["mailroom.abc@helpline.example", "<mailroom.abc@helpline.example>"],
    ids=["bare", "bracketed"],
)
def test_message_id_gets_exactly_one_pair_of_brackets(message_id: str) -> None:
    assert reparse(compose(message_id=message_id))["Message-ID"] == (
        "<mailroom.abc@helpline.example>"
    )


@pytest.mark.parametrize(
    "message_id",
    ["no-at-sign", "a b@c", "a@b\r\nBcc: x@y", "<a@b> <c@d>", ""],
    ids=["no-at", "space", "crlf", "two-ids", "empty"],
)
def test_bad_own_message_id_is_refused(message_id: str) -> None:
    with pytest.raises(ValueError):
        compose(message_id=message_id)


def test_thread_headers() -> None:
    parsed = reparse(
        compose(in_reply_to="<parent@school.example>", references=["root@school.example"])
    )
    assert parsed["In-Reply-To"] == "<parent@school.example>"
    assert parsed["References"].split() == ["<root@school.example>", "<parent@school.example>"]


def test_references_are_bounded_first_and_last_kept() -> None:
    ids = [f"m{n}@school.example" for n in range(60)]
    msg = compose(in_reply_to=ids[-1], references=ids)
    refs = reparse(msg)["References"].split()
    assert len(refs) == MAX_REFERENCES
    assert refs[0] == "<m0@school.example>"
    assert refs[-1] == "<m59@school.example>"
    assert refs[1:] == [f"<m{n}@school.example>" for n in range(60 - MAX_REFERENCES + 1, 60)]


def test_long_message_ids_are_never_encoded() -> None:
    long_id = "x" * 120 + "@school.example"
    raw = wire(compose(in_reply_to=long_id, references=[long_id, "a@b.example"]))
    assert b"=?" not in raw.split(b"\r\n\r\n")[0]
    assert f"In-Reply-To: <{long_id}>".encode() in raw


def test_references_from_mail_are_cleaned() -> None:
    refs = ["<ok@school.example>", "bad id@x", "evil@x\r\nBcc: y@z", "ok@school.example", "<>"]
    assert bound_references(refs) == ["ok@school.example"]


def test_in_reply_to_that_is_not_an_id_is_dropped() -> None:
    parsed = reparse(compose(in_reply_to="not an id\r\nBcc: x@y"))
    assert parsed["In-Reply-To"] is None and parsed["Bcc"] is None


@pytest.mark.parametrize(
    "value", [INJECTING_WORD, NESTED_WORD], ids=["encoded-word", "nested-encoded-word"]
)
def test_encoded_words_cannot_inject_through_any_field(value: str) -> None:
    msg = compose(
        subject=value,
        to=[Address("jo@school.example", value)],
        extra_headers={"X-Mailroom-Note": value},
        attachments=[(value, "text/plain", b"x")],
    )
    raw = wire(msg)
    assert "bcc" not in header_names(raw)
    assert b"\r\nBcc" not in raw
    assert reparse(msg)["Bcc"] is None


def test_generated_headers_are_verified() -> None:
    # Bypass the cleaning to show the last line of defence on its own.
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = INJECTING_WORD
    with pytest.raises(ValueError, match="Subject"):
        _verify_generated_headers(msg)


def test_extra_headers() -> None:
    parsed = reparse(compose(extra_headers={"X-Mailroom-Ticket": "HL-7\r\nBcc: x@y"}))
    assert parsed["X-Mailroom-Ticket"] == "HL-7 Bcc: x@y"
    assert parsed["Bcc"] is None


@pytest.mark.parametrize(
    "headers",
    [{"Bcc": "x@y"}, {"Message-ID": "<a@b>"}, {"Bad Name": "x"}, {"X-A:b": "x"}],
    ids=["bcc", "own-header", "space-in-name", "colon-in-name"],
)
def test_extra_headers_cannot_take_over(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        compose(extra_headers=headers)


def test_needs_a_recipient() -> None:
    with pytest.raises(ValueError):
        compose(to=[], cc=[])


# -- bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("Hello\n", "7bit"),
        ("Zoë\n", "quoted-printable"),
        ("x" * 2000 + "\n", "quoted-printable"),
    ],
    ids=["ascii", "non-ascii", "very-long-line"],
)
def test_body_is_seven_bit_clean(text: str, cte: str) -> None:
    msg = compose(text=text)
    raw = wire(msg)
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = reparse(msg)
    assert parsed["Content-Transfer-Encoding"] == cte
    assert parsed.get_content().replace("\r\n", "\n") == text


def test_html_alternative_and_attachments() -> None:
    msg = compose(
        html="<p>Hello <b>Jo</b></p>",
        attachments=[
            ("evidence.png", "image/png", b"\x89PNG\r\n\x1a\n"),
            ("forwarded.eml", "message/rfc822", b"Subject: x\r\n\r\nbody\r\n"),
            ("weird\r\nname.txt", "not a type", b"data"),
        ],
    )
    parsed = reparse(msg)
    assert parsed.get_content_type() == "multipart/mixed"
    body = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert body is not None and html is not None
    assert "<b>Jo</b>" in html.get_content()
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == [
        "evidence.png",
        "forwarded.eml",
        "weird name.txt",
    ]
    assert attachments[0].get_content() == b"\x89PNG\r\n\x1a\n"
    assert [a.get_content_type() for a in attachments] == [
        "image/png",
        "application/octet-stream",
        "application/octet-stream",
    ]
    assert wire(msg).count(b"MIME-Version") == 1


# -- Message-IDs and subject tags --------------------------------------------------


def test_make_message_id() -> None:
    first = make_message_id("Helpline.Example", "HL-000123")
    second = make_message_id("helpline.example", "HL-000123")
    assert first != second
    assert first.startswith("mailroom.hl-000123.") and first.endswith("@helpline.example")
    assert "<" not in first
    ours = ["helpline.example"]
    assert is_our_message_id(first, ours, MESSAGE_ID_PREFIX)
    assert is_our_message_id(f"<{first}>", ours, MESSAGE_ID_PREFIX)
    assert not is_our_message_id("CAF=abc@mail.gmail.com", ours, MESSAGE_ID_PREFIX)
    assert make_message_id("helpline.example").startswith("mailroom.")


@pytest.mark.parametrize(
    "domain", ["bad domain", "a@b", "<x>", ""], ids=["space", "at", "brackets", "empty"]
)
def test_make_message_id_rejects_bad_domains(domain: str) -> None:
    with pytest.raises(ValueError):
        make_message_id(domain)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Fake account", "[Helpline #1] Fake account"),
        ("Re: Fake account", "Re: [Helpline #1] Fake account"),
        ("Re: Re: [Helpline #1] Fake account", "Re: [Helpline #1] Fake account"),
        ("RE: AW: [helpline #1] Fake account", "Re: [Helpline #1] Fake account"),
        ("[Helpline #1] Re: Fake account", "Re: [Helpline #1] Fake account"),
        ("[Helpline #1] [Helpline #1] x", "[Helpline #1] x"),
        ("Fwd: Fake account", "Fwd: [Helpline #1] Fake account"),
        ("Re[2]: Fake account", "Re: [Helpline #1] Fake account"),
        ("", "[Helpline #1]"),
        ("Re:", "Re: [Helpline #1]"),
        ("About [Helpline #2]", "[Helpline #1] About"),
        ("Line\r\nBcc: x@y", "[Helpline #1] Line Bcc: x@y"),
        ("Recap of the meeting", "[Helpline #1] Recap of the meeting"),
        ("Ref: 12345", "[Helpline #1] Ref: 12345"),
    ],
    ids=[
        "plain",
        "reply",
        "double-reply-already-tagged",
        "foreign-prefixes-case",
        "tag-before-prefix",
        "double-tag",
        "forward",
        "numbered-reply",
        "empty",
        "only-prefix",
        "other-ticket-tag-removed",
        "crlf",
        "word-starting-with-re",
        "ref-is-not-a-reply",
    ],
)
def test_tag_subject(subject: str, expected: str) -> None:
    assert tag_subject(subject, TEMPLATE, 1) == expected


@given(st.text(max_size=80))
def test_tag_subject_is_idempotent_and_tags_once(subject: str) -> None:
    once = tag_subject(subject, TEMPLATE, 1)
    assert tag_subject(once, TEMPLATE, 1) == once
    assert once.count("[Helpline #1]") == 1
    assert "\n" not in once and "\r" not in once


@pytest.mark.parametrize(
    ("subject", "template", "expected"),
    [
        ("Re: [Helpline #123] Fake account", TEMPLATE, 123),
        ("re: [helpline  #45] x", TEMPLATE, 45),
        ("[Helpline # 7]", TEMPLATE, 7),
        ("No tag here", TEMPLATE, None),
        ("[Helpline #abc]", TEMPLATE, None),
        ("Helpline #12", TEMPLATE, None),
        ("(Case 9) x", "(Case {id})", 9),
        ("x [HL.*+?#5] y", "[HL.*+?#{id}]", 5),
        ("x [HLaaaa#5] y", "[HL.*+?#{id}]", None),
        ("[Helpline #1] [Helpline #2]", TEMPLATE, 1),
    ],
    ids=[
        "reply",
        "case-and-spaces",
        "space-after-hash",
        "none",
        "not-a-number",
        "no-brackets",
        "other-template",
        "regex-characters-are-literal",
        "regex-characters-do-not-match-anything",
        "first-wins",
    ],
)
def test_find_ticket_tag(subject: str, template: str, expected: int | None) -> None:
    assert find_ticket_tag(subject, template) == expected


def test_strip_tag_and_make_tag() -> None:
    assert make_tag(TEMPLATE, 42) == "[Helpline #42]"
    assert strip_tag("Re: [Helpline #42] Fake account", TEMPLATE) == "Re: Fake account"
    assert strip_tag("[Helpline #1] a [Helpline #2] b", TEMPLATE) == "a b"


@pytest.mark.parametrize(
    "template", ["[Helpline]", "[{id} {id}]", "{id}"], ids=["no-id", "two-ids", "only-id"]
)
def test_bad_tag_templates(template: str) -> None:
    with pytest.raises(ValueError):
        find_ticket_tag("x", template)


@given(st.text(max_size=60))
def test_clean_header_text_has_no_control_characters(value: str) -> None:
    cleaned = clean_header_text(value)
    assert not any(ch in cleaned for ch in "\r\n\x00\t\x0b\x0c\x85\u2028\u2029")
    assert cleaned == cleaned.strip()


@given(
    subject=st.text(max_size=60),
    name=st.text(max_size=40),
)
def test_no_value_from_mail_adds_a_header(subject: str, name: str) -> None:
    msg = compose(subject=subject, to=[Address("jo@school.example", name)])
    names = header_names(wire(msg))
    assert sorted(names) == sorted(
        [
            "from", "to", "subject", "date", "message-id", "x-loop", "content-type",
            "content-transfer-encoding", "mime-version",
        ]
    )  # fmt: skip
    assert reparse(msg)["To"].addresses[0].addr_spec == "jo@school.example"


def test_composing_again_gives_the_same_bytes() -> None:
    """A retry or a resend after a lapsed lease composes the mail again: same bytes."""
    files = [("shot.png", "image/png", b"\x89PNG\r\n")]
    first = wire(compose(html="<p>Hello</p>", attachments=files))
    assert first == wire(compose(html="<p>Hello</p>", attachments=files))
    assert first != wire(compose(html="<p>Hello</p>", attachments=files,
                                 message_id="mailroom.other@helpline.example"))


def test_a_boundary_quoted_in_the_text_is_passed_over() -> None:
    plain = compose(html="<p>x</p>")
    boundary = plain.get_boundary()
    assert boundary is not None
    hostile = compose(text=f"--{boundary}\nContent-Type: text/html\n\n<script>", html="<p>x</p>")
    assert hostile.get_boundary() not in (None, boundary)
    parsed = message_from_bytes(wire(hostile), policy=policy.default)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/alternative", "text/plain", "text/html"]


def test_a_note_goes_at_the_end_of_the_text_and_inside_the_html_body() -> None:
    from mailroom.outbox.rendered import with_note

    form = {"text": "Hello\n\n", "html": "<html><body><p>Hello</p></body></html>"}
    noted = with_note(form, "Note: <b> & more")
    assert noted["text"] == "Hello\n\nNote: <b> & more\n"
    assert noted["html"] == (
        "<html><body><p>Hello</p><p>Note: &lt;b&gt; &amp; more</p>\n</body></html>")
    assert with_note({"text": "x", "html": None}, "n")["html"] is None
    assert form["text"] == "Hello\n\n"  # the stored form is left as it was
