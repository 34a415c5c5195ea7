"""Abuse limits on one inbound message, checked before anything is written (pure).

A message over a limit is mail's fault, not ours: :class:`OverLimit` is a
``MailError``, so the pipeline marks the inbox row ``bad`` with the reason
(the raw bytes stay, as for any bad message) and nothing else happens: no
ticket, no mail. ``mailroom inbox retry`` checks again with the settings of
the day, so a row passes once its limit was raised, and not before.

The checks go from the cheapest to the dearest, and each bounds the next:

1. ``max_header_bytes``: the message's own header, measured on the raw bytes
   before any parsing: the run of header fields at the top, as the parser
   will read them (up to the empty line, or to the first line that is not a
   field when a broken message lacks that line, the repaired lines included).
   Default 256 KiB, what Exchange Online accepts; Postfix keeps 100 KB. Real
   mail stays far below: a References chain of a few hundred ids and a stack
   of Received, DKIM and ARC fields come to tens of KB. The headers of the
   MIME parts are bounded by ``max_mime_parts``.
2. ``max_mime_parts``: the MIME parser stops at the part past the limit, so
   20,000 tiny parts cost what 1,000 do (the parser takes some 40 µs and a
   few KB per part). Default 1,000: ten times ``max_attachments``, room for
   the containers around the files (alternative, related, mixed), inline
   images, and forwarded messages with their own parts (a MIME digest of
   fifty messages has about 200), while a message at the limit still parses
   in tens of milliseconds.
3. ``max_attachments``: counted once the message is parsed, so that files
   found inside a text body (uuencoded) count too. Default 100: helpline
   mail carries a few screenshots, and every stored attachment is a file
   in the store, a row, and a file on each notification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message as StdMessage

from mailroom.errors import MailError
from mailroom.intake.headerblock import read_header
from mailroom.intake.message import TooManyParts, count_mime_parts, parse_message_tree
from mailroom.mailtypes import ParsedMessage


@dataclass(frozen=True)
class MessageLimits:
    """The ``[limits]`` settings."""

    max_attachments: int = 100
    max_mime_parts: int = 1000
    max_header_bytes: int = 256 * 1024


class OverLimit(MailError):
    """The message is over one of the limits; the text names it and the value."""


def parse_within_limits(
    raw: bytes, limits: MessageLimits
) -> tuple[ParsedMessage, StdMessage | None]:
    """``parse_message_tree`` for a message within the limits; ``OverLimit`` else."""
    check_header_size(raw, limits)
    try:
        parsed, tree = parse_message_tree(raw, max_parts=limits.max_mime_parts)
    except TooManyParts:
        found = max(count_mime_parts(raw), limits.max_mime_parts + 1)
        raise OverLimit(over("too many MIME parts", found, limits.max_mime_parts,
                             "max_mime_parts")) from None
    check_attachments(parsed, limits)
    return parsed, tree


# An mbox postmark, then fields (a name, a colon, the value and its folded lines).
_HEADER_FIELDS = re.compile(
    rb"(?:From [^\r\n]*\r?\n)?(?:[^\s:]+[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n)*")


def header_size(raw: bytes) -> int:
    """The bytes of the header fields at the top of ``raw`` (linear time), with the
    lines the parser reads as fields once the block is repaired (folds that lost
    their blank, a stray line above the first field: :mod:`.headerblock`)."""
    match = _HEADER_FIELDS.match(raw)
    size = match.end() if match else 0
    block = read_header(raw)
    return max(size, block.end) if block is not None else size


def check_header_size(raw: bytes, limits: MessageLimits) -> None:
    size = header_size(raw)
    if size > limits.max_header_bytes:
        raise OverLimit(over("header too large", size, limits.max_header_bytes,
                             "max_header_bytes", unit=" bytes"))


def check_attachments(parsed: ParsedMessage, limits: MessageLimits) -> None:
    count = len(parsed.attachments)
    if count > limits.max_attachments:
        raise OverLimit(over("too many attachments", count, limits.max_attachments,
                             "max_attachments"))


def over(what: str, found: int, limit: int, key: str, unit: str = "") -> str:
    """``too many attachments: 150 (limit 100, limits.max_attachments)``"""
    return f"{what}: {found}{unit} (limit {limit}{unit}, limits.{key})"
