"""What an erasure removes outside the database: sent mail files and exports.

Mail bytes *name* an address (:func:`names_address`) when the address
appears in them as written, or once a header (RFC 2047) or a part
(base64, quoted-printable, a returned message inside a bounce) is decoded:
a bounce often carries the original as base64, and a quoted-printable line
break can split an address in two.

**Sent mail** (:func:`sweep_sent_mail`): the file transport writes each
outgoing mail as an ``.eml`` file; one is deleted when its envelope
(``X-Mailroom-Rcpt-To``) or ``To``/``Cc`` name the address, when its
Message-ID is one of the outgoing mails the erasure dropped (a notification
to practitioners carries the person's text without their address), or when
its content names the address. Every file of the folder is read: an erasure
is rare, the folder is a development and test set-up.

**Exports** (:func:`delete_exports`): ``mailroom export`` writes
``export-<address>-<UTC time>`` directories, by default under
``var/exports/``; those about the address are deleted there. An export
written elsewhere (``--out``) is the admin's to delete: mailroom cannot know
where it went next.

Files are unlinked, not overwritten: on journalling and copy-on-write file
systems and on SSDs overwriting in place does not reach the old blocks
anyway; encrypt the disk. Nothing here follows a symbolic link. A file that
cannot be deleted is reported, never raised: the database part of the
erasure does not wait on it.
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.message
import email.policy
import json
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

__all__ = [
    "FileSweep",
    "delete_exports",
    "export_stem",
    "names_address",
    "sweep_sent_mail",
]

ENVELOPE_HEADERS = ("X-Mailroom-Rcpt-To", "To", "Cc")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass
class FileSweep:
    """Files deleted, and what could not be (path: reason)."""

    deleted: int = 0
    left_behind: list[str] = field(default_factory=list)


# --- naming ----------------------------------------------------------------------------


def names_address(raw: bytes | None, address: str) -> bool:
    """Whether mail bytes name ``address`` (lower case), as written or decoded.

    The whole address: ``jo@school.example`` is not named by ``jo@school.example.org``
    or ``bigjo@school.example``."""
    if not raw:
        return False
    pattern = _address_pattern(address)
    if pattern.search(raw.lower()):
        return True
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    return any(_part_names(part, pattern) for part in message.walk())


def _address_pattern(address: str) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![\w.!#$%&'*+/=?^`{|}~-])" + re.escape(address.encode())
                      + rb"(?![\w-]|\.[\w-])")


def _part_names(part: email.message.Message, pattern: re.Pattern[bytes]) -> bool:
    if any(pattern.search(_decoded_header(value).lower().encode()) for value in part.values()):
        return True
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):
        return False
    return isinstance(payload, bytes) and pattern.search(payload.lower()) is not None


def _decoded_header(value: Any) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return str(value)


# --- sent mail -------------------------------------------------------------------------


def sweep_sent_mail(folders: Iterable[Path], address: str,
                    message_ids: Collection[str]) -> FileSweep:
    """Delete the ``.eml`` files in ``folders`` sent to or about ``address``, or whose
    Message-ID (without ``<>``) is in ``message_ids``."""
    sweep = FileSweep()
    for folder in dict.fromkeys(folders):
        for path in _eml_files(folder, sweep):
            try:
                data = _read(path)
            except OSError as exc:
                sweep.left_behind.append(f"{path}: {exc.strerror or exc}")
                continue
            if _is_about(data, address, message_ids):
                _unlink(path, sweep)
    return sweep


def _eml_files(folder: Path, sweep: FileSweep) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    except OSError as exc:
        sweep.left_behind.append(f"{folder}: {exc.strerror or exc}")
        return []
    return sorted(Path(e.path) for e in entries
                  if e.name.endswith(".eml") and e.is_file(follow_symlinks=False))


def _read(path: Path) -> bytes:
    fd = os.open(path, _READ_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _is_about(data: bytes, address: str, message_ids: Collection[str]) -> bool:
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    message_id = str(headers.get("Message-ID", "")).strip().strip("<>")
    if message_id and message_id in message_ids:
        return True
    named = getaddresses([str(v) for h in ENVELOPE_HEADERS for v in headers.get_all(h, [])])
    if any(addr.strip().lower() == address for _name, addr in named):
        return True
    return names_address(data, address)


def _unlink(path: Path, sweep: FileSweep) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        sweep.left_behind.append(f"{path}: {exc.strerror or exc}")
        return
    sweep.deleted += 1


# --- exports ---------------------------------------------------------------------------


def export_stem(address: str) -> str:
    """``export-<address>``: the start of an export directory's name."""
    return "export-" + re.sub(r"[^a-z0-9@._-]", "_", address)[:100]


def delete_exports(folder: Path, address: str) -> FileSweep:
    """Delete the export directories about ``address`` directly in ``folder``."""
    sweep = FileSweep()
    name = re.compile(re.escape(export_stem(address)) + r"-\d{8}T\d{6}Z(?:-\d+)?")
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return sweep
    except OSError as exc:
        sweep.left_behind.append(f"{folder}: {exc.strerror or exc}")
        return sweep
    for entry in sorted(entries, key=lambda e: e.name):
        if name.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False) \
                and _export_of(Path(entry.path), address):
            _remove_tree(Path(entry.path), sweep)
    return sweep


def _export_of(directory: Path, address: str) -> bool:
    """Its export.json names ``address`` (a long address's directory name is cut short);
    a directory whose export.json is missing or unreadable goes by its name."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return bool(json.loads(_read(directory / "export.json")).get("address") == address)
    return True


def _remove_tree(directory: Path, sweep: FileSweep) -> None:
    errors: list[str] = []

    def note(_function: Any, path: str, exc_info: Any) -> None:
        errors.append(f"{path}: {exc_info[1]}")

    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        return
    shutil.rmtree(directory, onerror=note)  # never follows symlinks inside
    if errors:
        sweep.left_behind += errors
    else:
        sweep.deleted += 1
