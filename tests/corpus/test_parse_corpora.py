"""parse_message over the shared corpora: real mail written by others.

Every file that looks like a message must parse (``MailError`` allowed) in
bounded time; apache-james-mime4j's ``_decoded_*`` files say what each leaf
part decodes to; a few facts asserted by the upstream test suites are checked.
The corpora are read in place and never copied (see SOURCES.md).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.errors import MailError
from mailroom.intake.message import decode_bytes, extract_uuencoded, parse_message
from mailroom.mailtypes import Address, ParsedMessage
from tests.corpus.corpus_files import CORPORA, corpus_messages, relative

MIME4J = CORPORA / "apache-james-mime4j" / "core" / "src" / "test" / "resources"

pytestmark = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no corpora at {CORPORA}")

MESSAGES = corpus_messages()


# ---------------------------------------------------------------- every message parses


def check_invariants(parsed: ParsedMessage) -> None:
    for line in (parsed.subject, *(a.name for a in (*parsed.to, *parsed.cc))):
        assert not set(line) & {"\r", "\n", "\x00"}
    assert "\x00" not in parsed.text
    (parsed.text + (parsed.html or "") + parsed.subject).encode("utf-8")  # no lone surrogates
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert all(a.addr == a.addr.lower() for a in (*parsed.to, *parsed.cc))
    assert all(not mid.startswith("<") for mid in (*parsed.references, *parsed.in_reply_to))
    for attachment in parsed.attachments:
        assert attachment.filename and "/" not in attachment.filename
        assert not attachment.filename.startswith(".")


def test_the_selection_finds_the_corpora() -> None:
    assert len(MESSAGES) > 800
    assert not any("_decoded" in p.name or p.suffix == ".py" for p in MESSAGES)


@pytest.mark.parametrize("path", MESSAGES, ids=[relative(p) for p in MESSAGES])
def test_message_parses(path: Path) -> None:
    raw = path.read_bytes()
    try:
        parsed = parse_message(raw)
    except MailError:
        return
    assert not any(d.startswith("parser-fallback") for d in parsed.defects), parsed.defects
    check_invariants(parsed)


# ---------------------------------------------------------------- mime4j expectations

# Decoded parts where our reading of a broken message differs from mime4j's.
KNOWN_DIFFERENCES = {
    "double-semicolon_decoded_1_2.txt": "the second text/plain alternative is not the body",
    "double-semicolon2_decoded_1_2.txt": "the second text/plain alternative is not the body",
    "multi-frag_decoded_1_3_2.bin": "bad closing boundary: trailing base64 junk is decoded too",
    "frag_decoded_1_2_1_2_1_2_1_2.bin": "truncated base64: the last partial group is decoded too",
    "malformedHeaderStartsBody-nocrlfcrlf_decoded_1.txt": "a header-like body line stays body",
    "very-long-boundary_decoded_1_1.txt": "the stdlib strips trailing blanks from boundaries",
    "very-very-long-boundary_decoded_1_1.txt": "the stdlib strips trailing blanks from boundaries",
    "weird-boundary_decoded_1_1.txt": "the stdlib strips trailing blanks from boundaries",
}

# Messages with no header at all: not mail, refused with a reason (stored as bad).
NOT_MAIL = {"malformedHeader-noheader_decoded_1.txt",
            "malformedHeaderStartsBody-noheader_decoded_1.txt"}


def decoded_parts(xml_path: Path) -> Iterator[tuple[str, str | None]]:
    """(decoded file name, declared charset) for every leaf in a _decoded.xml."""
    root = ET.parse(xml_path).getroot()
    for entity in root.iter():
        header = entity.find("header")
        for body in (*entity.findall("text-body"), *entity.findall("binary-body")):
            fields = " ".join(f.text or "" for f in header) if header is not None else ""
            charset = re.search(r"charset=\"?([\w.:-]+)", fields, re.I)
            yield body.get("name") or "", charset.group(1) if charset else None


def mime4j_cases() -> list[tuple[Path, str, str | None]]:
    if not MIME4J.is_dir():
        return []
    cases = []
    for xml_path in sorted(MIME4J.glob("*/*_decoded.xml")):
        message = xml_path.with_name(xml_path.name.replace("_decoded.xml", ".msg"))
        cases += [(message, name, charset) for name, charset in decoded_parts(xml_path)]
    return cases


MIME4J_CASES = mime4j_cases()


def everything_in(parsed: ParsedMessage, depth: int = 0) -> tuple[set[bytes], str]:
    """Attachment bytes and body text, forwarded messages included."""
    blobs = {a.data for a in parsed.attachments}
    text = parsed.text + (parsed.html or "")
    for attachment in parsed.attachments:
        if attachment.content_type == "message/rfc822" and depth < 5 and attachment.data.strip():
            inner_blobs, inner_text = everything_in(parse_message(attachment.data), depth + 1)
            blobs |= inner_blobs
            text += "\n" + inner_text
    return blobs, text


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize(
    ("message", "name", "charset"),
    MIME4J_CASES,
    ids=[f"{m.parent.name}/{name}" for m, name, _ in MIME4J_CASES],
)
def test_mime4j_decoded_parts(message: Path, name: str, charset: str | None) -> None:
    if name in NOT_MAIL:
        with pytest.raises(MailError, match="not an email message"):
            parse_message(message.read_bytes())
        return
    if name in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[name])
    expected = (message.parent / name).read_bytes()
    blobs, text = everything_in(parse_message(message.read_bytes()))
    if expected in blobs:
        return
    assert name.endswith(".txt"), f"{name}: no attachment has these {len(expected)} bytes"
    expected_text, _ = extract_uuencoded(decode_bytes(expected, charset).replace("\r\n", "\n"))
    assert squeeze(expected_text) in squeeze(text)


# ---------------------------------------------------------------- asserted facts

Check = Callable[[ParsedMessage], object]


def attachment_names(parsed: ParsedMessage) -> list[str]:
    return [a.filename for a in parsed.attachments]


FACTS: list[tuple[str, str, Check]] = [
    (
        "spamscope-known-values",
        "spamscope-mail-parser/tests/mails/mail_test_2",
        lambda p: (
            p.subject == "Bollettino Meteorologico del 29/11/2015"
            and p.message_id == "4516257BC5774408ADC1263EEBBBB73F@ad.regione.vda.it"
            and p.sender is not None
            and p.sender.addr == "meteo@regione.vda.it"
            and len(p.to) == 2
            and p.to[0].addr == "echo@tu-berlin.de"
            and len(p.attachments) == 3
            and p.date == datetime(2015, 11, 29, 8, 45, 18, tzinfo=UTC)
        ),
    ),
    (
        "spamscope-malformed-reply-to",
        "spamscope-mail-parser/tests/mails/mail_malformed_3",
        lambda p: (
            p.reply_to == (Address("smgesi4@gmail.com", "VICTORIA Souvenirs"),)
            and {"start-boundary-not-found", "multipart-invariant-violation"} <= set(p.defects)
            and p.header("x-msmail-priority") == "High"
        ),
    ),
    (
        "spamscope-gb2312-subject",
        "spamscope-mail-parser/tests/mails/mail_test_9",
        lambda p: p.subject.startswith("我把镜头拉近些"),
    ),
    (
        "mikel-iso-2022-jp-folded-subject",
        "mikel-mail/spec/fixtures/emails/rfc2822/example14.eml",
        lambda p: p.subject == "Re: TEST テストテスト",
    ),
    (
        "mikel-invalid-8bit-name",
        "mikel-mail/spec/fixtures/emails/error_emails/invalid_subject_characters.eml",
        lambda p: p.sender is not None and p.sender.name == "Formação Frenetikpolis",
    ),
    (
        "mikel-rfc6532-utf8-headers",
        "mikel-mail/spec/fixtures/emails/rfc6532/utf8_headers.eml",
        lambda p: (
            p.subject == "Säying Hello" and p.sender == Address("jdöe@mächine.example", "Jöhn Doe")
        ),
    ),
    (
        "rt-rfc2231-continuations",
        "bestpractical-rt/t/data/emails/rfc2231-attachment-filename-continuations",
        lambda p: attachment_names(p) == ["新しいテキスト ドキュメント.txt"],
    ),
    (
        "rt-gb18030",
        "bestpractical-rt/t/data/emails/new-ticket-from-gb18030",
        lambda p: p.subject == "测试" and p.text.startswith("测试"),
    ),
    (
        "rt-notes-uuencoded",
        "bestpractical-rt/t/data/emails/notes-uuencoded",
        lambda p: (
            attachment_names(p) == ["Naz_Head.jpg"]
            and p.attachments[0].data.startswith(b"\xff\xd8")
        ),
    ),
    (
        "flufl-gb2312-8bit-subject",
        "flufl.bounce/flufl/bounce/tests/data/sina_01.txt",
        lambda p: p.subject == "邮件传输失败！",
    ),
    (
        "helpdesk-quoted-printable",
        "django-helpdesk/tests/test_files/quoted_printable.eml",
        lambda p: (
            p.subject == "Český test"
            and p.text.strip() == "Tohle je test českých písmen odeslaných z gmailu."
        ),
    ),
    (
        "helpdesk-8bit-utf8",
        "django-helpdesk/tests/test_files/all-special-chars.eml",
        lambda p: p.subject == "Testovácí email" and p.text.strip() == "íářčšáíéřášč",
    ),
    (
        "helpdesk-undecodable-utf8",
        "django-helpdesk/tests/test_files/utf-nondecodable.eml",
        lambda p: (
            p.subject == "Fwd: Cyklozaměstnavatel - změna vyhodnocení"
            and p.html is not None
            and "prosazuje lepší" in p.html
        ),
    ),
    (
        "cpython-boundary-clash",
        "cpython-test_email/Lib/test/test_email/data/msg_15.txt",
        lambda p: "xx.gif" in attachment_names(p),
    ),
    (
        "cpython-external-body",
        "cpython-test_email/Lib/test/test_email/data/msg_36.txt",
        lambda p: (
            attachment_names(p) == ["external-file (external reference).txt",
                                    "draft-ietf-mboned-mix-00.txt (external reference).txt"]
            and b"FILE /internet-drafts/draft-ietf-mboned-mix-00.txt" in p.attachments[0].data
            and not any(b"Content-" in a.data for a in p.attachments)
        ),
    ),
    (
        "flanker-external-body",
        "mailgun-flanker/tests/fixtures/messages/message-external-body.eml",
        lambda p: "draft-ietf-http-authentication-00.txt (external reference).txt"
        in attachment_names(p),
    ),
    (
        "mimekit-bom",
        "jstedfast-MimeKit/UnitTests/TestData/messages/feedback-report.txt",
        lambda p: (
            p.subject == "FW: Earn money"
            and p.sender is not None
            and p.sender.addr == "abusedesk@example.com"
        ),
    ),
]


@pytest.mark.parametrize(("path", "check"), [f[1:] for f in FACTS], ids=[f[0] for f in FACTS])
def test_known_facts(path: str, check: Check) -> None:
    file = CORPORA / path
    if not file.is_file():
        pytest.skip(f"{path} is not in this copy of the corpora")
    parsed = parse_message(file.read_bytes())
    assert check(parsed), (parsed.subject, parsed.sender, attachment_names(parsed))
