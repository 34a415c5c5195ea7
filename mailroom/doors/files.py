"""The file door: ``.eml`` files, Maildir folders, mbox files and stdin.

``arrivals`` yields each message as the door contract hands it to the inbox
(:mod:`mailroom.doors.contract`): the bytes, with the path it came from
(``maildir:PATH``, ``mbox:PATH#N``, the file's path, or ``stdin``) as its
reference. ``iter_sources`` yields the same as ``(door_ref, raw_bytes)``. Both
read one message at a time, so a mailbox larger than memory is read message by
message. What kind of source a path is gets decided by looking at it, not by
its name alone. The door's answer when the inbox is unavailable is
``mailroom ingest``'s: it stops, and ``ingest -`` exits 75 (EX_TEMPFAIL), so
the MTA that piped the message keeps it and tries again.
"""

from __future__ import annotations

import mailbox
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mailroom.doors.contract import Arrival, Envelope

NAME = "file"  # the door's name in the envelope
STDIN_REF = "stdin"
MBOX_MAGIC = b"From "
SINGLE_MESSAGE_SUFFIXES = {".eml", ".msg", ".mail"}
NOT_MAIL_SUFFIXES = {".json", ".py", ".md", ".rst", ".html", ".xml", ".sh", ".pl", ".t", ".rb",
                     ".js", ".ts", ".c", ".h", ".cs", ".java", ".bin", ".gz", ".zip", ".png",
                     ".jpg", ".gif", ".pdf"}
HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+:)")


class SourceError(Exception):
    """A path that is not a message, a Maildir or an mbox."""


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """An mbox starts with a ``From `` line; a ``.eml`` that does is still one message."""
    if not path.is_file() or path.suffix.lower() in SINGLE_MESSAGE_SUFFIXES:
        return False
    with path.open("rb") as handle:
        return handle.read(len(MBOX_MAGIC)) == MBOX_MAGIC


def looks_like_message(path: Path) -> bool:
    """In a folder: a file whose first line is a header (or an mbox ``From `` line)."""
    if path.name.startswith(".") or path.suffix.lower() in NOT_MAIL_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            return bool(HEADER_LINE.match(handle.read(1024)))
    except OSError:
        return False


def arrivals(paths: list[str], stdin: BinaryIO | None = None, *,
             stdin_envelope: tuple[str | None, tuple[str, ...]] = (None, ())) -> Iterator[Arrival]:
    """Every message under ``paths``, as the door hands it to the inbox.

    ``stdin_envelope`` is the envelope sender and recipients of the message on
    stdin, as an MTA's pipe passes them (``${sender}``, ``${recipient}``): a
    signed reply address that was a Bcc or a forward's target is found there.
    """
    mail_from, rcpt_to = stdin_envelope
    for ref, raw in iter_sources(paths, stdin):
        if ref == STDIN_REF:
            yield Arrival(raw, Envelope(NAME, ref=ref, mail_from=mail_from, rcpt_to=rcpt_to))
        else:
            yield Arrival(raw, Envelope(NAME, ref=ref))


def iter_sources(paths: list[str], stdin: BinaryIO | None = None) -> Iterator[tuple[str, bytes]]:
    for name in paths:
        if name == "-":
            if stdin is None:
                raise SourceError("-: no standard input")
            yield STDIN_REF, stdin.read()
            continue
        yield from iter_path(Path(name))


def iter_path(path: Path) -> Iterator[tuple[str, bytes]]:
    if is_maildir(path):
        yield from iter_maildir(path)
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_dir() or looks_like_message(child):
                yield from iter_path(child)
    elif is_mbox(path):
        yield from iter_mbox(path)
    elif path.is_file():
        yield str(path), _strip_from_line(path.read_bytes())
    else:
        raise SourceError(f"{path}: no such file or directory")


def iter_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    for sub in ("new", "cur"):
        for entry in sorted(os.scandir(path / sub), key=lambda e: e.name):
            if entry.is_file() and not entry.name.startswith("."):
                yield f"maildir:{entry.path}", Path(entry.path).read_bytes()


def iter_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """Messages of an mbox, without the ``From `` separator line, one at a time."""
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            with box.get_file(key) as handle:
                raw = handle.read()
            yield f"mbox:{path}#{index}", _strip_from_line(raw)
    finally:
        box.close()


def _strip_from_line(raw: bytes) -> bytes:
    if raw.startswith(MBOX_MAGIC):
        end = raw.find(b"\n")
        return raw[end + 1 :] if end >= 0 else b""
    return raw


def count_messages(paths: list[str]) -> int | None:
    """How many messages the paths hold, when that is cheap to know (for progress)."""
    total = 0
    for name in paths:
        path = Path(name)
        if name == "-" or is_mbox(path):
            return None
        if is_maildir(path):
            total += sum(len(os.listdir(path / sub)) for sub in ("new", "cur"))
        elif path.is_dir():
            total += sum(len(files) for _, _, files in os.walk(path))
        else:
            total += 1
    return total
