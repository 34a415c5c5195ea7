"""Safe display names for attachments.

``sanitise_filename`` turns whatever a sender put in ``filename=`` / ``name=``
into a name that is safe to show and to offer for download: no directory
parts, no control or bidi-override characters, no leading dots, no
Windows-reserved device names, at most ``MAX_LENGTH`` characters. Spaces are
kept as the sender wrote them (``Report  2024 .pdf`` keeps its two spaces);
only the blanks at either end go, with trailing dots, which Windows drops. It is still
never used as a path: the blob store names files by their SHA-256.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

MAX_LENGTH = 200
MAX_EXTENSION = 16

# Bidi embeddings/overrides/isolates, marks, and invisible characters that
# can make "gpj.exe" display as "exe.jpg" or hide part of a name.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u061c\u200b\u200e\u200f\u2028\u2029\ufeff"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
)
_WINDOWS_UNSAFE = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in "0123456789¹²³"]
)
# A line break or tab is one space (CRLF too); runs of spaces are kept as the sender wrote them.
_BREAKS = re.compile(r"\r\n|[\t\n\v\f\r\x85\u2028\u2029]")

# Names for parts that come without one; the rest use "attachment.<ext>".
_DEFAULT_NAMES = {
    "message/rfc822": "forwarded-message.eml",
    "message/global": "forwarded-message.eml",
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "message/feedback-report": "feedback-report.txt",
    "text/rfc822-headers": "headers.txt",
    "text/calendar": "invite.ics",
}
_EXTENSIONS = {"text/plain": ".txt", "image/jpeg": ".jpg", "application/octet-stream": ".bin"}
# Built-in table only: the host's /etc/mime.types must not change the names.
_MIME_TABLE = mimetypes.MimeTypes(filenames=())


def sanitise_filename(name: str | None, content_type: str) -> str:
    """A safe display name for an attachment, or a default from its type."""
    cleaned = _clean(name or "")
    return cleaned or default_filename(content_type)


def default_filename(content_type: str) -> str:
    """``image.png``, ``attachment.pdf``, ``forwarded-message.eml`` …"""
    content_type = content_type.strip().lower()
    if content_type in _DEFAULT_NAMES:
        return _DEFAULT_NAMES[content_type]
    stem = "image" if content_type.startswith("image/") else "attachment"
    return stem + _extension_for(content_type)


def _extension_for(content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type) or _MIME_TABLE.guess_extension(content_type)
    return extension or ".bin"


def _clean(name: str) -> str:
    name = unicodedata.normalize("NFC", name).translate(_INVISIBLE)
    name = _BREAKS.sub(" ", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _WINDOWS_UNSAFE.sub("_", name).strip(" .")
    if not name:
        return ""
    return _truncate(_avoid_reserved(name))


def _avoid_reserved(name: str) -> str:
    """``CON.txt`` → ``_CON.txt``: device names are unsafe on Windows."""
    stem = name.split(".", 1)[0].rstrip(" ")
    return "_" + name if stem.upper() in _WINDOWS_RESERVED else name


def _truncate(name: str) -> str:
    """Cap the length, keeping a short extension such as ``.pdf``."""
    if len(name) <= MAX_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > MAX_EXTENSION or " " in extension:
        return name[:MAX_LENGTH].rstrip(" .")
    keep = MAX_LENGTH - len(extension) - 1
    return stem[:keep].rstrip(" .") + "." + extension
