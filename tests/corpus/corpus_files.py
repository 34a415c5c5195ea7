"""Which files under ``../shared/corpora`` are mail messages, and a few named sets.

The corpora are read in place, never copied into the repository (several are
under copyleft licences and hold real third-party addresses; see their
``SOURCES.md``). Every helper returns an empty list when they are absent, and
:data:`needs_corpora` skips a module then.

:func:`looks_like_message` is the selection both the parse and the ingest
tests use, so they cover the same messages.
"""

from __future__ import annotations

import email
import hashlib
import re
from email.policy import compat32
from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
NOTMUCH = CORPORA / "notmuch" / "test"
LKML = NOTMUCH / "corpora" / "lkml"
THREADING = NOTMUCH / "corpora" / "threading"
FLUFL = CORPORA / "flufl.bounce" / "flufl" / "bounce" / "tests" / "data"
PERL = CORPORA / "perl-Mail-DeliveryStatus-BounceParser" / "t" / "corpus"

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no corpora at {CORPORA}")

CODE_SUFFIXES = {".py", ".js", ".rb", ".php", ".t", ".pm", ".sh"}
DATA_SUFFIXES = {".json", ".xml", ".out", ".html", ".png", ".wav", ".bin", ".md"}
NOT_MAIL_SUFFIXES = frozenset(CODE_SUFFIXES | DATA_SUFFIXES)
NOT_MAIL_NAMES = re.compile(r"(README|LICENSE|COPYING|NOTICE|MIT-LICENSE|ARTISTIC-LICENSE)", re.I)
HEADER_LINE = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]+[ \t]*:)")
ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def looks_like_message(path: Path) -> bool:
    """Mail by extension (.eml/.msg) or because it opens with a header line.

    The reply-parser fixtures (bare bodies), licences, code, expectations and
    mime4j's ``_decoded_*`` outputs are left out.
    """
    if path.suffix.lower() in NOT_MAIL_SUFFIXES or NOT_MAIL_NAMES.match(path.name):
        return False
    if "_decoded" in path.name or path.name.startswith("."):
        return False
    if path.suffix.lower() in (".eml", ".msg"):
        return True
    with path.open("rb") as handle:
        head = handle.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    return bool(HEADER_LINE.match(head))


def messages_under(folder: Path) -> list[Path]:
    """Every message file below ``folder``, sorted by path."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and looks_like_message(p)]


def corpus_messages() -> list[Path]:
    """Every message file in all the corpora (~870)."""
    return messages_under(CORPORA)


def relative(path: Path) -> str:
    """The path below the corpora folder, for test ids and messages."""
    return path.resolve().relative_to(CORPORA.resolve()).as_posix()


# ---------------------------------------------------------------- header facts, independently


def header_message_id(raw: bytes) -> str | None:
    """The Message-ID as a reader sees it: the first ``<...>`` of the header, else the
    bare value. Read with the standard library only, not with mailroom's code."""
    value = email.message_from_bytes(raw, policy=compat32).get("Message-ID")
    if value is None:
        return None
    text = " ".join(str(value).split())
    match = ANGLE_ID.search(text)
    ident = match.group(1) if match else text.strip("<> ")
    return ident or None


# Fields mail servers add on the way (a mail delivered twice differs in these only).
TRACE_FIELD = re.compile(r"(received|return-path|delivered-to|x-original-to|envelope-to|"
                         r"delivery-date|authentication-results|received-spf|arc-.*|x-spam.*)$",
                         re.IGNORECASE)


def identity(raw: bytes) -> str:
    """Same message or not: the Message-ID and the message without its trace fields
    (line ends as LF), else the bytes themselves. Files that share a Message-ID but
    not their content (notmuch's ``duplicate`` set) are different messages."""
    ident = header_message_id(raw)
    if not ident:
        return f"bytes:{hashlib.sha256(raw).hexdigest()}"
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n").rstrip(b"\n"), policy=compat32)
    for name in {name for name in msg if TRACE_FIELD.match(name.strip())}:
        del msg[name]
    return f"id:{ident}:{hashlib.sha256(msg.as_bytes(unixfrom=False)).hexdigest()}"


def linked_ids(raw: bytes) -> tuple[str | None, list[str]]:
    """A message's own id and every ``<id>`` its In-Reply-To and References name."""
    msg = email.message_from_bytes(raw, policy=compat32)
    links: list[str] = []
    for name in ("In-Reply-To", "References"):
        for value in msg.get_all(name, []):
            links += ANGLE_ID.findall(" ".join(str(value).split()))
    return header_message_id(raw), links
