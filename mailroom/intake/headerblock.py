"""The header block as mail servers really write it, repaired before parsing (pure).

The standard library's parser ends the header block at the first line that is
neither a field (``Name: value``) nor a folded line (one that starts with a
blank). Real mail breaks that in two ways, and the rest of the header would be
read as body text, From and Subject lost:

* a folded line that lost its leading blank, as when a relay rewraps a long
  ``Received:`` line (``by mx.example.org with ESMTP id …`` on a line of its
  own);
* a stray line above the first field, such as ``---- Original email message
  ----`` left by a client that saved a message, or forwarded it by hand.

:func:`read_header` finds both, bounded: a run of lines that are not fields is
a lost fold only when a field a mail system writes (``From``, ``Subject``,
``Received``, ``X-…`` …) follows it before the empty line, and a stray line
only when such a field follows it at once. Anything else (a header that runs
into the body without its empty line, as in ``Subject: a`` then ``Some text``
then ``Note: b``) is read as before. ``Name :`` (a blank before the colon,
obsolete but still written) becomes ``Name:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_SCAN = 1 << 20  # a header block longer than this is read as the parser reads it
MAX_LOST_FOLDS = 20  # lines in one run of folds that lost their blank
MAX_STRAY_LINES = 3  # lines above the first field

_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")
_FIELD = re.compile(rb"([!-9;-~]+)([ \t]*):")
_LETTER = re.compile(rb"[A-Za-z]")
# Fields a mail system writes: a run of broken lines must be followed by one of these.
_MAIL_FIELD = re.compile(
    rb"(?:from|to|cc|bcc|subject|date|message-id|received|return-path|mime-version"
    rb"|content-[\w-]+|sender|reply-to|delivered-to|in-reply-to|references|comments|keywords"
    rb"|dkim-signature|domainkey-signature|authentication-results|received-spf|arc-[\w-]+"
    rb"|list-[\w-]+|resent-[\w-]+|thread-[\w-]+|importance|priority|precedence|organization"
    rb"|user-agent|auto-submitted|errors-to|disposition-notification-to|accept-language"
    rb"|x-[\w-]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HeaderBlock:
    """A repaired header block: ``head`` stands for ``raw[:end]``."""

    head: bytes
    end: int
    repairs: tuple[str, ...]


def read_header(raw: bytes) -> HeaderBlock | None:
    """The repaired header block of ``raw``, or None when it needs no repair."""
    lines = ((m.start(), m.group()) for m in _LINE.finditer(raw, 0, min(len(raw), MAX_HEADER_SCAN)))
    out: list[bytes] = []
    repairs: list[str] = []
    pending: list[bytes] = []  # lines that are neither fields nor folds, not yet placed
    seen_field = False
    end = 0
    for index, (start, whole) in enumerate(lines):
        line = whole
        content = line.rstrip(b"\r\n")
        if not content:
            end = start
            break
        field = _FIELD.match(content)
        if field is not None and not _LETTER.search(field.group(1)):
            field = None  # "10:00:00 +0000", the end of a broken date, is no field
        if field is None and not pending and (content[:1] in (b" ", b"\t") and seen_field
                                              or index == 0 and content.startswith(b"From ")):
            out.append(line)
            end = start + len(line)
            continue
        if field is None:  # a broken line, or a fold of one: placed when a field follows
            pending.append(line)
            continue
        if pending and not _place(pending, field.group(1), seen_field, out, repairs):
            end = start - sum(len(p) for p in pending)
            break
        pending = []
        if field.group(2):
            line = field.group(1) + line[field.end(2):]
            repairs.append("blank-before-colon")
        out.append(line)
        seen_field, end = True, start + len(whole)
    if not repairs:
        return None
    return HeaderBlock(head=b"".join(out), end=end, repairs=tuple(dict.fromkeys(repairs)))


def _place(pending: list[bytes], name: bytes, seen_field: bool, out: list[bytes],
           repairs: list[str]) -> bool:
    """Place a run of broken lines before the field ``name``: as lost folds of the
    field above, or dropped as stray lines above the first field. False when
    they are neither (the header ends before them, as the parser reads it)."""
    if not _MAIL_FIELD.fullmatch(name):
        return False
    if not seen_field:
        if len(pending) > MAX_STRAY_LINES:
            return False
        repairs.append("stray-line-before-header")
        return True
    if len(pending) > MAX_LOST_FOLDS:
        return False
    out.extend(line if line[:1] in (b" ", b"\t") else b" " + line for line in pending)
    repairs.append("fold-without-blank")
    return True
