"""Attachment names are safe to show and never carry a path."""

from __future__ import annotations

import pytest

from mailroom.intake.filenames import MAX_LENGTH, default_filename, sanitise_filename

CASES = [
    ("report.pdf", "application/pdf", "report.pdf"),
    ("../../etc/passwd", "text/plain", "passwd"),
    ("..\\..\\windows\\system32\\evil.dll", "application/octet-stream", "evil.dll"),
    ("C:\\Users\\me\\photo.jpg", "image/jpeg", "photo.jpg"),
    ("/absolute/path/file.txt", "text/plain", "file.txt"),
    ("evil\x00.exe", "application/octet-stream", "evil.exe"),
    ("bell\x07and\x1bescape.txt", "text/plain", "bellandescape.txt"),
    ("tab\tand\r\nnewline.txt", "text/plain", "tab and newline.txt"),
    ("invoice\u202efdp.exe", "application/octet-stream", "invoicefdp.exe"),
    ("\u2066isolate\u2069\u200e.png", "image/png", "isolate.png"),
    (".htaccess", "text/plain", "htaccess"),
    ("...hidden.txt", "text/plain", "hidden.txt"),
    ("trailing dots...", "text/plain", "trailing dots"),
    ("CON", "text/plain", "_CON"),
    ("con.txt", "text/plain", "_con.txt"),
    ("LPT1.log", "text/plain", "_LPT1.log"),
    ("console.txt", "text/plain", "console.txt"),
    ('what?<is>"this"|*.txt', "text/plain", "what__is__this___.txt"),
    ("file:stream.txt", "text/plain", "file_stream.txt"),
    ("  spaced   out  .txt ", "text/plain", "spaced   out  .txt"),  # inner spaces kept
    ("Report\u00a0 2024.pdf", "application/pdf", "Report\u00a0 2024.pdf"),
    ("two\r\nlines\tand a tab.txt", "text/plain", "two lines and a tab.txt"),
    ("Grüße.txt", "text/plain", "Grüße.txt"),
    ("e\u0301te\u0301.txt", "text/plain", "été.txt"),  # NFC
    ("新しいテキスト.txt", "text/plain", "新しいテキスト.txt"),
]


@pytest.mark.parametrize(
    ("name", "content_type", "expected"), CASES, ids=[repr(c[0])[:40] for c in CASES]
)
def test_sanitise_filename(name: str, content_type: str, expected: str) -> None:
    assert sanitise_filename(name, content_type) == expected


DEFAULTS = [
    (None, "image/png", "image.png"),
    ("", "image/jpeg", "image.jpg"),
    ("..", "image/gif", "image.gif"),
    ("/", "application/pdf", "attachment.pdf"),
    ("\x00\u202e", "application/octet-stream", "attachment.bin"),
    (None, "application/x-never-heard-of", "attachment.bin"),
    (None, "text/plain", "attachment.txt"),
    (None, "text/html", "attachment.html"),
    (None, "message/rfc822", "forwarded-message.eml"),
    (None, "message/delivery-status", "delivery-status.txt"),
    (None, "text/calendar", "invite.ics"),
    (None, " Image/PNG ", "image.png"),
]


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    DEFAULTS,
    ids=[d[1].strip() + repr(d[0]) for d in DEFAULTS],
)
def test_empty_names_get_a_default_from_the_content_type(
    name: str | None, content_type: str, expected: str
) -> None:
    assert sanitise_filename(name, content_type) == expected


def test_default_filename_does_not_depend_on_the_host_mime_table() -> None:
    assert default_filename("application/zip") == "attachment.zip"


@pytest.mark.parametrize(
    ("name", "extension"),
    [("a" * 500 + ".pdf", ".pdf"), ("b" * 300 + ".tar.gz", ".gz"), ("ü" * 250 + ".docx", ".docx")],
    ids=["pdf", "tar.gz", "non-ascii"],
)
def test_long_names_are_capped_keeping_the_extension(name: str, extension: str) -> None:
    cleaned = sanitise_filename(name, "application/octet-stream")
    assert len(cleaned) == MAX_LENGTH
    assert cleaned.endswith(extension)


def test_long_name_without_a_short_extension_is_cut() -> None:
    cleaned = sanitise_filename("x" * 300 + "." + "y" * 40, "application/octet-stream")
    assert len(cleaned) == MAX_LENGTH
    assert cleaned == "x" * MAX_LENGTH


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/../../b", "..\\..\\x", "\x00/..\x00/y", "....//....//z"],
    ids=["dotdot", "nested", "backslash", "nul", "dots"],
)
def test_no_result_contains_a_separator_or_dotdot_prefix(name: str) -> None:
    cleaned = sanitise_filename(name, "text/plain")
    assert "/" not in cleaned and "\\" not in cleaned and "\x00" not in cleaned
    assert not cleaned.startswith(".")
