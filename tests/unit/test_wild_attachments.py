"""Attachments named as the sender named them, and decoded without extra bytes.

Fixtures in ``tests/fixtures/wild``: raw 8-bit file names in legacy charsets,
names with runs of spaces, enclosed messages without a name, uuencoded files
(in a text body and as a part), BinHex (made by Python 3.10's ``binhex``
module, an encoder independent of ours) and message/external-body.
"""

from __future__ import annotations

import binascii
from pathlib import Path

import pytest

from mailroom.intake.binhex import decode_binhex
from mailroom.intake.message import extract_uuencoded, parse_message
from mailroom.mailtypes import ParsedMessage

WILD = Path(__file__).resolve().parents[1] / "fixtures" / "wild"


def parse_wild(name: str) -> ParsedMessage:
    return parse_message((WILD / name).read_bytes())


def names(parsed: ParsedMessage) -> list[str]:
    return [a.filename for a in parsed.attachments]


# ---------------------------------------------------------------- raw 8-bit names

RAW_NAMES = [
    ("raw-8bit-file-names-gbk.eml", ["截图 2024.png", "聊天记录.pdf"]),
    ("raw-8bit-file-names-shift-jis.eml", ["見積書 最終版.pdf", "写真.jpg"]),
    ("raw-8bit-file-names-cyrillic.eml", ["Скриншот переписки.pdf"]),
    ("raw-8bit-file-names-latin1.eml", ["Präsentation für Eltern.txt"]),
    # Two charsets in one message: each name is read on its own when the other reads oddly.
    ("raw-8bit-file-names-mixed.eml", ["Скриншот переписки.pdf", "Grüße.txt"]),
]


@pytest.mark.parametrize(("name", "expected"), RAW_NAMES, ids=[r[0] for r in RAW_NAMES])
def test_raw_8bit_file_names_are_read(name: str, expected: list[str]) -> None:
    assert names(parse_wild(name)) == expected


def test_a_raw_8bit_name_keeps_its_part_readable() -> None:
    parsed = parse_wild("raw-8bit-file-names-gbk.eml")
    assert parsed.attachments[0].content_type == "image/png"
    assert parsed.attachments[0].data.startswith(b"\x89PNG")
    assert parsed.text == "See the files."


# ---------------------------------------------------------------- spaces

def test_spaces_in_names_are_kept_exactly() -> None:
    assert names(parse_wild("spaced-file-names.eml")) == [
        "Screen Shot  2024-05-21 at  10.02.11 .png",  # as macOS names screenshots, doubled
        "chat   log part  2.pdf",  # RFC 2231 continuations
        "notes  —  copy.txt",  # an encoded word with underscores
    ]


# ---------------------------------------------------------------- enclosed messages

def test_an_enclosed_message_without_a_name_is_named_after_its_subject() -> None:
    parsed = parse_wild("attached-messages-without-names.eml")
    assert names(parsed) == [
        "Delete this or else — last warning.eml",  # encoded subject
        "Re_ your photos.eml",  # base64-encoded enclosed message; ":" is unsafe in a name
        "forwarded-message.eml",  # no subject
        "kept name.eml",  # the sender's own name wins
    ]
    assert all(a.content_type == "message/rfc822" for a in parsed.attachments)
    inner = parse_message(parsed.attachments[0].data)
    assert inner.text.strip() == "You have until Friday."


# ---------------------------------------------------------------- uuencode

def test_a_uuencoded_file_is_decoded_in_full_when_its_last_line_lost_its_blank() -> None:
    parsed = parse_wild("uuencoded-stripped-lines.eml")
    assert names(parsed) == ["school  photo.jpg"]
    assert parsed.attachments[0].data == (WILD / "uuencoded.bin").read_bytes()
    assert "begin" not in parsed.text and "end" not in parsed.text.split()
    assert parsed.text.startswith("Here is the photo.") and parsed.text.rstrip().endswith("Thanks")


def test_an_x_uuencode_part_is_decoded_and_named_from_its_begin_line() -> None:
    parsed = parse_wild("uuencoded-part.eml")
    (attachment,) = parsed.attachments
    assert attachment.filename == "evidence file.bin"
    assert attachment.data == (WILD / "uuencoded.bin").read_bytes()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 44, 45, 46, 89, 90, 91, 1000])
def test_every_length_decodes_to_its_exact_octets(size: int) -> None:
    data = bytes((7 * i + 3) % 256 for i in range(size))
    lines = [binascii.b2a_uu(data[i : i + 45]).decode().rstrip("\n").rstrip(" ")
             for i in range(0, len(data), 45)]
    text = "before\nbegin 644 f.bin\n" + "\n".join([*lines, "", "end"]) + "\nafter\n"
    rest, files = extract_uuencoded(text)
    assert [f.data for f in files] == [data]
    assert rest == "before\nafter\n"


def test_an_overlong_uuencoded_line_keeps_what_its_count_says() -> None:
    line = binascii.b2a_uu(b"abcdef").decode().rstrip("\n") + "XYZ"  # a checksum character or so
    _, files = extract_uuencoded(f"begin 644 a.txt\n{line}\n`\nend\n")
    assert [f.data for f in files] == [b"abcdef"]


# ---------------------------------------------------------------- BinHex

def test_binhex_is_decoded_to_its_data_fork_named_as_in_its_header() -> None:
    parsed = parse_wild("binhex.eml")
    (attachment,) = parsed.attachments
    assert (attachment.filename, attachment.content_type) == ("Bild vom Schulhof.gif", "image/gif")
    assert attachment.data == (WILD / "binhex.bin").read_bytes()  # no extra octets


def test_binhex_with_mac_line_ends_decodes_and_a_damaged_one_is_kept_as_it_came() -> None:
    text = (WILD / "binhex.eml").read_bytes().decode("ascii")
    hqx = text[text.index("(This file") : text.index(":\r\n--XyZ--") + 1]
    found = decode_binhex(hqx.replace("\r\n", "\r"))
    assert found is not None and found.data == (WILD / "binhex.bin").read_bytes()
    damaged = hqx[:200] + ("!" if hqx[200] != "!" else "#") + hqx[201:]
    assert decode_binhex(damaged) is None
    assert decode_binhex("no binhex here") is None
    kept = parse_message((WILD / "binhex.eml").read_bytes().replace(hqx.encode(), damaged.encode()))
    assert names(kept) == ["Bild vom Schulhof.hqx"]


# ---------------------------------------------------------------- message/external-body

def test_external_body_is_the_reference_it_is_without_the_phantom_header() -> None:
    parsed = parse_wild("external-body.eml")
    assert names(parsed) == ["annual report 2024.pdf (external reference).txt",
                             "external-file (external reference).txt"]
    assert parsed.attachments[0].data == (
        b"access-type: anon-ftp\nname: annual report 2024.pdf\nsite: ftp.example.org\n"
        b"directory: pub/reports\n")
    assert parsed.attachments[1].data == (
        b"access-type: URL\nurl: https://files.example.org/report.pdf\n")
    assert all(b"Content-" not in a.data for a in parsed.attachments)


def test_an_enclosed_message_with_a_raw_8bit_subject_is_named_after_it() -> None:
    inner = "From: a@example.jp\r\nSubject: 動画の件\r\n\r\nx\r\n".encode("cp932")
    raw = (b"From: b@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=q\r\n\r\n"
           b"--q\r\nContent-Type: text/plain\r\n\r\nsee\r\n"
           b"--q\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--q--\r\n")
    assert names(parse_message(raw)) == ["動画の件.eml"]
