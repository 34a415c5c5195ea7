"""Abuse limits on one message (pure): header size, MIME parts, attachments."""

from __future__ import annotations

import pytest

from mailroom.errors import MailError
from mailroom.intake.limits import MessageLimits, OverLimit, header_size, parse_within_limits
from mailroom.intake.message import TooManyParts, count_mime_parts, parse_mime

HEAD = (b"From: Jo <jo@school.example>\r\nTo: helpline@helpline.example\r\n"
        b"Subject: screenshots\r\nMessage-ID: <shots@school.example>\r\n")


def with_files(count: int, *, boundary: str = "b") -> bytes:
    """A text body and ``count`` tiny attachments in one multipart/mixed."""
    parts = [b"Content-Type: text/plain\r\n\r\nSee the files.\r\n"]
    parts += [b'Content-Type: image/png\r\nContent-Disposition: attachment; filename="s%d.png"'
              b"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" % i
              for i in range(count)]
    delimiter = f"--{boundary}\r\n".encode()
    return (HEAD + f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"'
            f"\r\n\r\n".encode() + b"".join(delimiter + p for p in parts)
            + f"--{boundary}--\r\n".encode())


def uuencoded(count: int) -> bytes:
    return HEAD + b"\r\n" + b"".join(b"begin 644 f%d.txt\r\n#86)C\r\n`\r\nend\r\n" % i
                                     for i in range(count))


# --- the header ---------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "rest"), [
    (b"Subject: a\r\nFrom: b\r\n", b"\r\nbody\r\n"),
    (b"Subject: a\r\n folded\r\n\tmore\r\n", b"\r\nbody"),
    (b"From jo@school.example Mon Mar  2 10:00:00 2026\nSubject: a\n", b"\nbody"),
    (b"Subject: a\r\n", b"no blank line, this is body text\r\nX: y\r\n"),
    (b"", b"just text, no header at all"),
], ids=["plain", "folded", "mbox-postmark", "missing-blank-line", "no-header"])
def test_header_size_is_the_run_of_fields_at_the_top(header: bytes, rest: bytes) -> None:
    assert header_size(header + rest) == len(header)


def test_a_header_over_the_limit_is_refused_before_parsing() -> None:
    raw = b"X-Filler: " + b"a" * 5000 + b"\r\n" + HEAD + b"\r\nhello\r\n"
    with pytest.raises(OverLimit) as info:
        parse_within_limits(raw, MessageLimits(max_header_bytes=4096))
    assert str(info.value) == (
        f"header too large: {header_size(raw)} bytes (limit 4096 bytes, limits.max_header_bytes)")
    parsed, _ = parse_within_limits(raw, MessageLimits(max_header_bytes=8192))
    assert parsed.subject == "screenshots"


# --- MIME parts ---------------------------------------------------------------------------


def test_the_part_budget_stops_the_parser_at_the_part_past_it() -> None:
    raw = with_files(3)  # the message, the text part and three files: 5 parts
    assert len(list(parse_mime(raw, max_parts=5).walk())) == 5
    with pytest.raises(TooManyParts):
        parse_mime(raw, max_parts=4)


def test_too_many_parts_names_how_many_there_are() -> None:
    raw = with_files(20_000)
    with pytest.raises(OverLimit) as info:
        parse_within_limits(raw, MessageLimits())
    assert str(info.value) == "too many MIME parts: 20002 (limit 1000, limits.max_mime_parts)"
    assert isinstance(info.value, MailError)  # the mail's fault: the row becomes bad


@pytest.mark.parametrize(("raw", "parts"), [
    (with_files(7), 9),
    (with_files(2, boundary="with space"), 4),
    (HEAD + b"\r\nno MIME at all\r\n--b\r\n", 1),
    (HEAD + b'Content-Type: multipart/mixed; boundary=bare\r\n\r\n--bare\r\n\r\nx\r\n'
     b"--bare--\r\n", 2),
], ids=["files", "quoted-boundary", "no-boundary", "unquoted-boundary"])
def test_count_mime_parts_reads_the_delimiter_lines(raw: bytes, parts: int) -> None:
    assert count_mime_parts(raw) == parts


# --- attachments ----------------------------------------------------------------------------


def test_too_many_attachments() -> None:
    raw = with_files(150)
    with pytest.raises(OverLimit) as info:
        parse_within_limits(raw, MessageLimits())
    assert str(info.value) == "too many attachments: 150 (limit 100, limits.max_attachments)"
    parsed, _ = parse_within_limits(raw, MessageLimits(max_attachments=150))
    assert len(parsed.attachments) == 150


def test_files_uuencoded_in_the_text_count_as_attachments() -> None:
    with pytest.raises(OverLimit, match=r"too many attachments: 3 \(limit 2, "):
        parse_within_limits(uuencoded(3), MessageLimits(max_attachments=2))
    parsed, _ = parse_within_limits(uuencoded(2), MessageLimits(max_attachments=2))
    assert [a.filename for a in parsed.attachments] == ["f0.txt", "f1.txt"]


def test_a_message_within_every_limit_parses_as_before() -> None:
    parsed, tree = parse_within_limits(with_files(100), MessageLimits())
    assert tree is not None and len(parsed.attachments) == 100
    assert parsed.text.strip() == "See the files."
