"""Parse the raw bytes of a message into a ``ParsedMessage`` (pure).

The MIME tree comes from the standard library parser with the ``compat32``
policy, which never raises on malformed mail and keeps undeclared 8-bit
octets (as surrogate escapes) so that they can be decoded here: UTF-8 first,
then Windows-1252 / Latin-1. Header text (RFC 2047 in any charset) is decoded
here too; address lists are split by mail-parser's recovering address parser
(on the still-encoded header, so an encoded display name can never smuggle in
an address), with the standard library's lenient parser as a fallback.

``parse_message`` raises ``MailError`` only when nothing can be made of the
input (empty, an Outlook .msg file, or not an email message at all: no field a
mail system writes (From, To, Subject, Date, Received, Content-…) in the header
block, as when plain text is piped in by mistake; the inbox keeps it as ``bad``
with that reason) and nothing else, whatever
the input: an unexpected internal error falls back to a minimal header/body
split, recorded in ``defects``. The one exception is a part budget: given
``max_parts``, the MIME parser stops at the part past it (``TooManyParts``),
so a message of 20,000 tiny parts costs as little as one of ``max_parts``.

Each attachment is hashed once, as it is parsed (:class:`~mailroom.mailtypes.Attachment`):
SHA-256 names its blob and MD5 matches the hash lists hotlines exchange, so the
safeguarding blocklist can be asked about a file before anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email
import email.utils
import io
import logging
import mimetypes
import quopri
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import MessageDefect
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, TypeVar

from mailparser.utils import get_addresses

from mailroom.errors import MailError
from mailroom.intake.binhex import decode_binhex
from mailroom.intake.charsets import (
    codec_for,
    decode_escaped,
    decode_windows_1252,
    decode_with,
    legacy_charset,
    oddness,
)
from mailroom.intake.filenames import sanitise_filename
from mailroom.intake.headerblock import read_header
from mailroom.intake.htmltext import html_to_text
from mailroom.mailtypes import Address, Attachment, ParsedMessage

log = logging.getLogger(__name__)
_T = TypeVar("_T", bound=Hashable)

MAX_DEPTH = 40  # MIME nesting deeper than this is not walked (see defects)
BODY_TYPES = ("text/plain", "text/html")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg, not RFC 5322

# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw`` (one RFC 5322 message); raise ``MailError`` if hopeless."""
    raw = _check_input(raw)
    try:
        return _parse(raw)
    except Exception as exc:  # last line of defence: any input must parse
        log.info("mail parser failed (%s: %s); using minimal parse", type(exc).__name__, exc)
        return _parse_minimal(raw, exc)


def parse_message_tree(
    raw: bytes, *, max_parts: int | None = None
) -> tuple[ParsedMessage, Message | None]:
    """``parse_message`` and the MIME tree it read (None after a fallback), so that
    the pipeline's classifier does not parse the same bytes a second time.

    ``max_parts``: raise ``TooManyParts`` rather than build a tree of more parts.
    """
    raw = _check_input(raw)
    try:
        msg = parse_mime(raw, max_parts=max_parts)
        return _parse_tree(raw, msg), msg
    except TooManyParts:
        raise
    except Exception as exc:  # last line of defence: any input must parse
        log.info("mail parser failed (%s: %s); using minimal parse", type(exc).__name__, exc)
        return _parse_minimal(raw, exc), None


# Text piped in by mistake is no message: some field a mail system writes must stand in
# the header block, before the first empty line (a stray line above it is allowed).
_HEADER_PROBE = 64 * 1024
_MAIL_HEADER = re.compile(
    rb"(?:^|\n)(?:from|to|cc|subject|date|message-id|received|return-path|mime-version"
    rb"|content-[\w-]+|sender|reply-to|delivered-to|in-reply-to|references|dkim-signature"
    rb"|authentication-results|arc-[\w-]+|x-[\w-]+)[ \t]*:", re.IGNORECASE)


def _check_input(raw: bytes) -> bytes:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MailError(f"expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if raw.startswith(_OLE_MAGIC):
        raise MailError("an Outlook .msg (OLE) file, not an RFC 5322 message")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    blank = re.match(rb"(?:[ \t]*\r?\n)+(?=\S)", raw)
    raw = raw[blank.end() :] if blank else raw
    if not raw.strip():
        raise MailError("empty message")
    if not _MAIL_HEADER.search(re.split(rb"\r?\n[ \t]*\r?\n", raw[:_HEADER_PROBE], maxsplit=1)[0]):
        start = raw[:40].decode("utf-8", "replace").split("\n")[0].strip()
        raise MailError(f"not an email message: no mail header (From, To, Subject, Date, "
                        f"Received…) before the text, which starts {start!r}")
    return raw


def _parse(raw: bytes) -> ParsedMessage:
    return _parse_tree(raw, parse_mime(raw))


def _parse_tree(raw: bytes, msg: Message) -> ParsedMessage:
    linesep = "\r\n" if b"\r\n" in raw[:4096] else "\n"
    legacy = None if raw.isascii() else legacy_header_charset(msg, _charset_hint(msg))
    body = _Collector(linesep, legacy)
    body.visit(msg, 0)
    text, html, from_html = body.result()
    return ParsedMessage(
        **_header_fields(msg, legacy),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        content_type=_safe_content_type(msg),
        defects=tuple(_unique(_tree_defects(msg) + body.defects)),
        text_from_html=from_html,
    )


def parse_mime(raw: bytes, chunk_size: int = 1 << 20, *, max_parts: int | None = None) -> Message:
    """The compat32 MIME tree of ``raw``, fed in chunks.

    ``email.message_from_bytes`` first decodes the whole message into one
    string (and a StringIO copy of it): with a 25 MB attachment that is
    ~250 MB at peak. Feeding bytes in chunks keeps it to ~4 copies.

    ``max_parts``: the parser makes its parts through a factory that counts
    them (the message itself is one, each part of a multipart and each
    enclosed message another) and raises ``TooManyParts`` at the one past it,
    so the work stops there, whatever follows.
    """
    if max_parts is None:
        parser = BytesFeedParser(policy=compat32)
    else:
        budget = _PartBudget(max_parts)
        parser = BytesFeedParser(budget, policy=compat32)
        budget.made = 0  # the parser calls its factory once, to try it
    view, block = memoryview(raw), read_header(raw)
    try:
        if block is not None:  # a header block repaired (see headerblock), then the rest
            parser.feed(block.head)
        for start in range(block.end if block else 0, len(raw), chunk_size):
            parser.feed(bytes(view[start : start + chunk_size]))
        msg = parser.close()
    except RecursionError as exc:  # the stdlib parser recurses once per nesting level
        raise MailError("MIME nesting too deep to parse") from exc
    msg.defects.extend(RepairedHeader(name) for name in (block.repairs if block else ()))
    return msg


class RepairedHeader(MessageDefect):
    """A repair made to the header block before parsing (its ``name``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class TooManyParts(MailError):
    """The message has more MIME parts than the parser was allowed to make."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} MIME parts")
        self.limit = limit


class _PartBudget:
    """A message factory for the feed parser that counts the parts it makes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.made = 0

    def __call__(self, policy: Any = compat32) -> Message:
        self.made += 1
        if self.made > self.limit:
            raise TooManyParts(self.limit)
        return Message(policy)


_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))', re.IGNORECASE)
_DASH_LINE = re.compile(rb"^--([^\r\n]*?)[ \t]*\r?$", re.MULTILINE)


def count_mime_parts(raw: bytes) -> int:
    """How many parts ``raw`` has by its delimiter lines, without parsing it: one
    for the message, one for every line ``--B`` where ``B`` is a boundary declared
    somewhere in the bytes. Exact for well-formed mail, a quick regular-expression
    scan for any size; what the parser counts may differ for broken mail (parts
    lost in an epilogue, enclosed messages), so this only says how many there
    are after ``TooManyParts`` said that there are too many."""
    boundaries = {quoted or bare for quoted, bare in _BOUNDARY_PARAM.findall(raw)}
    boundaries.discard(b"")
    if not boundaries:
        return 1
    return 1 + sum(1 for line in _DASH_LINE.finditer(raw) if line.group(1) in boundaries)


def _header_fields(msg: Message, legacy: str | None) -> dict[str, Any]:
    """The ``ParsedMessage`` fields that come from the top-level header."""
    raw = [(name, _unfold(_recover_8bit(value, legacy))) for name, value in msg.raw_items()]
    first = _first_values(raw)
    return {
        "message_id": _first_id(first.get("message-id", "")),
        "in_reply_to": tuple(_message_ids(first.get("in-reply-to", ""))),
        "references": tuple(_message_ids(first.get("references", ""))),
        "subject": decode_header_text(first.get("subject", "")),
        "sender": _sender(raw),
        "to": _addresses(raw, "to"),
        "cc": _addresses(raw, "cc"),
        "reply_to": _addresses(raw, "reply-to"),
        "date": parse_date(first.get("date", "")),
        "headers": _decoded_headers(raw),
    }


# --------------------------------------------------------------------------
# Header text
# --------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def decode_header_text(value: str) -> str:
    """A header value as one clean line: RFC 2047 and raw 8-bit decoded."""
    text = _decode_encoded_words(_unfold(_recover_8bit(value)))
    return _one_line(text)


def _recover_8bit(value: object, legacy: str | None = None) -> str:
    """compat32 keeps raw 8-bit octets as surrogate escapes; decode them.

    UTF-8 when they are valid UTF-8, else ``legacy`` (the charset read from all
    of the message's raw 8-bit header text, :func:`legacy_header_charset`), else
    what reads this value best (:func:`mailroom.intake.charsets.legacy_charset`).
    ISO-2022-JP, 7-bit with escape sequences, is decoded too.
    """
    value = decode_escaped(str(value))
    if not _SURROGATE.search(value):
        return value
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = decode_with(data, legacy) if legacy else None
    if text is None or oddness(text):  # another charset than the rest of the message's
        text = decode_with(data, legacy_charset([data], legacy))
    return text or ""


_SAMPLED_PARTS = 50


def legacy_header_charset(msg: Message, hint: str | None) -> str | None:
    """The charset of the message's raw 8-bit header text that is not UTF-8 (the
    top-level fields and the first parts' file names, pooled), read by detection
    with the body's declared charset as the hint; when no charset reads them all
    plausibly (a message put together from two computers), the hint alone, and
    each value is read on its own (:func:`_recover_8bit`)."""
    samples: list[bytes] = []
    stack, seen = [msg], 0
    while stack and seen < _SAMPLED_PARTS:
        part, seen = stack.pop(0), seen + 1
        items = part.raw_items() if part is msg else [
            (k, v) for k, v in part.raw_items() if k.lower().startswith("content-")]
        samples.extend(_raw_legacy(value) for _, value in items)
        stack.extend(_children(part) if part.is_multipart() else [])
    samples = [sample for sample in samples if sample]
    codec = codec_for(hint.lower()) if hint else None
    if not samples:
        return None
    pooled = legacy_charset(samples, codec)
    # One charset must read them all; when none does, each value is read on its own.
    return pooled if not oddness(decode_with(b"\n".join(samples), pooled) or "\ufffd") else codec


def _raw_legacy(value: object) -> bytes:
    """The octets of a raw 8-bit value that is not UTF-8 (else empty)."""
    text = str(value)
    if not _SURROGATE.search(text):
        return b""
    data = text.encode("ascii", "surrogateescape")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return b""


def _charset_hint(msg: Message) -> str | None:
    """The first charset declared by a text part (bounded search)."""
    stack, seen = [msg], 0
    while stack and seen < 50:
        part, seen = stack.pop(0), seen + 1
        charset = _charset(part)
        if charset and charset not in _UNDECLARED and part.get_content_maintype() == "text":
            return charset
        stack.extend(_children(part) if part.get_content_maintype() == "multipart" else [])
    return None


def _unfold(value: str) -> str:
    return _FOLD.sub("", value)


def _one_line(text: str) -> str:
    """Fold CR, LF, NUL and other controls to spaces; squeeze white space."""
    text = _CONTROL.sub(" ", _SURROGATE.sub("\ufffd", text))
    return _SPACES.sub(" ", text).strip()


def _decode_encoded_words(text: str) -> str:
    if "=?" not in text:
        return text
    tokens = _tokenise_encoded(text)
    out: list[str] = []
    pending: list[bytes] = []
    charset: str | None = None
    for token in tokens:
        if isinstance(token, str) or token[0] != charset:
            if pending:
                out.append(decode_bytes(b"".join(pending), charset))
            pending, charset = [], None
        if isinstance(token, str):
            out.append(token)
        else:
            charset = token[0]
            pending.append(token[1])
    if pending:
        out.append(decode_bytes(b"".join(pending), charset))
    return "".join(out)


def _tokenise_encoded(text: str) -> list[str | tuple[str, bytes]]:
    """Literal text and (charset, octets) pairs; blanks between words dropped."""
    tokens: list[str | tuple[str, bytes]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        previous_is_word = bool(tokens) and not isinstance(tokens[-1], str)
        if gap and not (previous_is_word and gap.isspace()):
            tokens.append(gap)
        charset, encoding, payload = match.groups()
        tokens.append((charset.split("*", 1)[0].lower(), _decode_word(encoding, payload)))
        position = match.end()
    if position < len(text):
        tokens.append(text[position:])
    return tokens


def _decode_word(encoding: str, payload: str) -> bytes:
    data = payload.encode("ascii", "replace")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    return decode_base64(data)


# --------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------

_UNDECLARED = frozenset(
    ["", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined"]
)
_LATIN1 = frozenset(
    ["iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252"]
)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data`` in its declared charset, guessing when that fails."""
    name = (charset or "").strip().strip("\"'").lower()
    if name in _UNDECLARED or name in _LATIN1:
        return _decode_undeclared(data) if name not in _LATIN1 else decode_windows_1252(data)
    codec = codec_for(name)
    if codec is None:
        return _decode_undeclared(data)
    try:
        return _SURROGATE.sub("\ufffd", data.decode(codec))
    except (UnicodeError, ValueError):
        pass
    if codec == "utf-8":
        return decode_windows_1252(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _SURROGATE.sub("\ufffd", data.decode(codec, "replace"))


def _decode_undeclared(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_windows_1252(data)


# --------------------------------------------------------------------------
# Message-IDs, dates, addresses
# --------------------------------------------------------------------------

_BRACKETED_ID = re.compile(r"<\s*([^<>\s]+)\s*>")
_ID_SEPARATORS = re.compile(r"[\s<>,;\"()]+")


def _message_ids(value: str) -> list[str]:
    """Every Message-ID in a References/In-Reply-To value, in order, once."""
    text = _one_line(value)
    ids = _BRACKETED_ID.findall(text) or _bare_ids(text)
    return _unique([mid for mid in ids if mid])


def _bare_ids(text: str) -> list[str]:
    """``a@b c@d`` without brackets: the words with an ``@`` inside (linear time)."""
    return [word for word in _ID_SEPARATORS.split(text) if "@" in word.strip("@")]


def _first_id(value: str) -> str | None:
    ids = _message_ids(value)
    if ids:
        return ids[0]
    token = _one_line(value).strip("<> ")
    return token.replace(" ", "") or None


def parse_date(value: str) -> datetime | None:
    """A timezone-aware date (UTC when the header had no zone), or None."""
    text = _one_line(value)
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_PLAUSIBLE_ADDR = re.compile(
    r"[^\s<>()\[\]@,;:\"=?]+@[\w.-]+\.[\w-]+|[^\s<>()@,;:\"]+@\[[\d.:a-fA-F]+\]"
)


_DOMAIN = re.compile(r"@(?:(?:[\w-]+\.)*[\w-]+\.?|\[[^\[\]\s]+\])$")


def _sender(raw: list[tuple[str, str]]) -> Address | None:
    """The first From address; when From has none, the first of Sender, Reply-To and
    Return-Path that has one (the envelope sender comes last: :func:`with_envelope_sender`)."""
    for name in ("from", "sender", "reply-to", "return-path"):
        found = _addresses(raw, name)
        if found:
            return found[0]
    return None


def with_envelope_sender(parsed: ParsedMessage, mail_from: str | None) -> ParsedMessage:
    """``parsed`` with the envelope sender as its sender when no header named one
    (nor when the envelope sender is null, ``<>``, or no address)."""
    if parsed.sender is not None or not mail_from:
        return parsed
    found = _parse_address_list(mail_from)
    return dataclasses.replace(parsed, sender=found[0]) if found else parsed


def _addresses(raw: list[tuple[str, str]], header: str) -> tuple[Address, ...]:
    found: list[Address] = []
    for name, value in raw:
        if name.strip().lower() == header:
            found.extend(_parse_address_list(value))
    return tuple(_unique(found))


def _parse_address_list(value: str) -> list[Address]:
    """mail-parser's strict split (of the value as people's software writes it,
    repaired: :func:`repair_address_list`); the lenient one only where it gave up."""
    value = repair_address_list(_CONTROL.sub(" ", value))
    problems: list[dict[str, Any]] = []
    try:
        pairs = get_addresses(value, defects=problems)
    except Exception:  # mail-parser's recovery is best effort
        pairs, problems = [], [{"recovered": False}]
    strict = [_make_address(name, addr) for name, addr in pairs if _DOMAIN.search(addr.strip())]
    if strict and all(problem.get("recovered") for problem in problems):
        return _comment_names(strict, value)
    names = {a.addr: a.name for a in strict}
    lenient = [Address(a.addr, names.get(a.addr, "")) for a in _lenient_addresses(value)]
    return lenient or strict


_MAX_COMMENTED = 2000


def _comment_names(found: list[Address], value: str) -> list[Address]:
    """The old form ``jo@example.org (Jo Bloggs)``: the comment is the display name
    of an address that has none (the standard library reads it; only short values,
    as its parser recurses)."""
    if "(" not in value or len(value) > _MAX_COMMENTED or all(a.name for a in found):
        return found
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        return found
    names = {addr.strip().lower(): name for name, addr in pairs if name}
    return [a if a.name or a.addr not in names else _make_address(names[a.addr], a.addr)
            for a in found]


_TRAILING_DOT = re.compile(r"(@[^\s@<>()\[\],;\"]*[^\s@<>()\[\],;\".])\.+(?=[\s>,;)]|$)")
# Nothing to repair but trailing dots: no quotes, brackets in pairs without blanks inside.
_PLAIN_LIST = re.compile(r'[^<>"]*(?:<[^<>"\s]*>[^<>"]*)*')
_BRACKETED = re.compile(r"<([^<>]{1,400})>")  # an address is at most 320 characters


def repair_address_list(value: str) -> str:
    """An address list as people's software writes it, made one a parser reads:
    the trailing dot of a domain dropped (``a@example.org.``), a stray ``>`` (one
    outside any ``<…>`` or a doubled one) dropped, an unclosed ``<`` closed, and a
    local part with blanks inside angle brackets quoted (``<john smith@x>`` is the
    mailbox ``"john smith"@x``). Quoted text and encoded words are left as they are."""
    if _PLAIN_LIST.fullmatch(value) and not _TRAILING_DOT.search(value):
        return value
    out: list[str] = []
    quoted = escaped = False
    depth, opened = 0, 0  # open "<" brackets, and where the last one opened
    for index, ch in enumerate(value):
        if quoted:
            quoted = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth, opened = depth + 1, index
        elif ch == ">":
            if depth == 0:
                continue  # a stray ">"
            depth -= 1
        elif ch in ",;" and depth:
            out.append(_closing(depth, index - opened))  # an unclosed "<" ends with its address
            depth = 0
        out.append(ch)
    out.append(_closing(depth, len(value) - opened))
    text = _TRAILING_DOT.sub(r"\1", "".join(out))
    return _BRACKETED.sub(_quote_spaced_local, text)


def _closing(depth: int, length: int) -> str:
    """The ``>`` that closes one unclosed ``<`` of an address's length (else none)."""
    return ">" if depth == 1 and length <= _MAX_ADDRESS else ""


_MAX_ADDRESS = 400


def _quote_spaced_local(match: re.Match[str]) -> str:
    """``<john smith@x>`` → ``<"john smith"@x>``; any other ``<…>`` as it was."""
    local, at, domain = match.group(1).strip().rpartition("@")
    local = local.strip()
    if not at or not local or '"' in local or not _SPACES.search(local) or _SPACES.search(domain):
        return match.group(0)
    return f'<"{local}"@{domain}>'


def _lenient_addresses(value: str) -> list[Address]:
    """The standard library's forgiving split, keeping plausible addresses only.

    Encoded words are blanked first, so that ``=?utf-8?q?<boss@bank>?=`` in a
    display name can never become the address; names are not kept.
    """
    value = _ENCODED_WORD.sub(" ", value)
    try:
        pairs = email.utils.getaddresses([value], strict=False)
    except TypeError:  # Python without the ``strict`` keyword is lenient anyway
        pairs = email.utils.getaddresses([value])
    except Exception:
        pairs = []
    found = [a for _, a in pairs if _PLAUSIBLE_ADDR.fullmatch(a.strip())]
    # "Big Bug bb@bug.com", "a@x.org b@y.org": bare addresses among words.
    found = found or [t for t in re.split(r"[\s<>,;()]+", value) if _PLAUSIBLE_ADDR.fullmatch(t)]
    return [_make_address("", addr) for addr in found]


def _make_address(name: str, addr: str) -> Address:
    # The blanks of a quoted local part are part of the address: never squeezed.
    addr = (_CONTROL.sub(" ", addr).strip() if '"' in addr else _one_line(addr)).lower()
    return Address(addr=addr, name=_one_line(_decode_encoded_words(name)))


def _decoded_headers(raw: list[tuple[str, str]]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        key = _one_line(name).lower()
        headers.setdefault(key, []).append(_one_line(_decode_encoded_words(value)))
    return headers


def _first_values(raw: list[tuple[str, str]]) -> dict[str, str]:
    first: dict[str, str] = {}
    for name, value in raw:
        first.setdefault(name.strip().lower(), value)
    return first


# --------------------------------------------------------------------------
# Body and attachments
# --------------------------------------------------------------------------


@dataclass
class _Segment:
    """One run of body text: plain, HTML, or both (alternatives)."""

    plain: str | None = None
    html: str | None = None


@dataclass
class _Collector:
    """Walks the MIME tree, sorting leaves into body text and attachments."""

    linesep: str
    legacy: str | None = None  # the charset of raw 8-bit header text (file names)
    attached: bool = False  # inside a container sent as an attachment
    segments: list[_Segment] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def visit(self, part: Message, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.defects.append("nesting-too-deep")
            return
        content_type = _safe_content_type(part)
        if part.is_multipart() and _has_epilogue_parts(part):
            self.defects.append("parts-in-epilogue")
        if content_type == "message/external-body":
            self.attachments.append(_external_reference(part))
        elif content_type.startswith("message/"):
            self.attachments.append(
                _message_attachment(part, content_type, self.linesep, self.legacy))
        elif part.is_multipart() and part.get_content_disposition() == "attachment":
            self._visit_attached(part, depth)
        elif part.is_multipart() and part.get_content_subtype() == "alternative":
            self._visit_alternative(part, depth)
        elif part.is_multipart():
            for child in _children(part):
                self.visit(child, depth + 1)
        else:
            self._visit_leaf(part, content_type)

    def _visit_leaf(self, part: Message, content_type: str) -> None:
        if self.attached or not _is_body(part, content_type):
            self.attachments.append(_leaf_attachment(part, content_type, self.legacy))
        elif content_type == "text/html":
            self.segments.append(_Segment(html=_body_text(part)))
        else:
            text, files = extract_uuencoded(_body_text(part))
            self.segments.append(_Segment(plain=text))
            self.attachments.extend(files)

    def _visit_attached(self, part: Message, depth: int) -> None:
        """A multipart sent as an attachment: none of its text is body text."""
        sub = _Collector(self.linesep, self.legacy, attached=True)
        for child in _children(part):
            sub.visit(child, depth + 1)
        self.attachments.extend(sub.attachments)
        self.defects.extend(sub.defects)

    def _visit_alternative(self, part: Message, depth: int) -> None:
        chosen = _Segment()
        for child in _children(part):
            if _is_redundant_alternative(child):
                continue
            sub = _Collector(self.linesep, self.legacy, self.attached)
            sub.visit(child, depth + 1)
            plain, html = sub.joined()
            chosen.plain = chosen.plain if chosen.plain is not None else plain
            chosen.html = chosen.html if chosen.html is not None else html
            self.attachments.extend(sub.attachments)
            self.defects.extend(sub.defects)
        if chosen.plain is not None or chosen.html is not None:
            self.segments.append(chosen)

    def joined(self) -> tuple[str | None, str | None]:
        plain = [s.plain for s in self.segments if s.plain is not None]
        html = [s.html for s in self.segments if s.html is not None]
        return (_join_text(plain) if plain else None, "\n".join(html) if html else None)

    def result(self) -> tuple[str, str | None, bool]:
        """(text, html, text_from_html) for the whole message."""
        pieces = [
            s.plain if s.plain is not None else html_to_text(s.html or "") for s in self.segments
        ]
        from_html = any(s.plain is None and s.html for s in self.segments)
        html = [s.html for s in self.segments if s.html is not None]
        return _join_text(pieces), ("\n".join(html) if html else None), from_html


def _children(part: Message) -> list[Message]:
    # A leaf's get_payload() would copy its text: only a multipart's is read.
    payload = part.get_payload() if part.is_multipart() else None
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, Message)] + _epilogue_parts(part)


def _has_epilogue_parts(part: Message) -> bool:
    boundary, epilogue = part.get_boundary(), part.epilogue
    return bool(boundary and epilogue and f"--{boundary}" in epilogue)


def _epilogue_parts(part: Message) -> list[Message]:
    """Parts lost in the epilogue, as when a nested multipart reuses a boundary."""
    if not _has_epilogue_parts(part):
        return []
    boundary, epilogue = part.get_boundary() or "", part.epilogue or ""
    delimiter = re.compile(rf"^--{re.escape(boundary)}(?:--)?[ \t]*\r?$", re.MULTILINE)
    chunks = [c.removeprefix("\n") for c in delimiter.split(epilogue)[1:]]
    return [email.message_from_string(c, policy=compat32) for c in chunks if c.strip()]


def _is_body(part: Message, content_type: str) -> bool:
    """Inline text/plain or text/html without a file name is body text."""
    if content_type not in BODY_TYPES and not content_type.startswith("multipart/"):
        return False
    return part.get_content_disposition() != "attachment" and not _filename(part)


def _is_redundant_alternative(part: Message) -> bool:
    """text/enriched, text/watch-html … repeat the body; calendars do not."""
    if part.is_multipart() or part.get_content_maintype() != "text":
        return False
    return _safe_content_type(part) not in (*BODY_TYPES, "text/calendar")


def _join_text(pieces: list[str]) -> str:
    """Several inline text parts, separated by a blank line."""
    kept = [p for p in pieces if p.strip()]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return "\n\n".join(p.rstrip("\n") for p in kept) + "\n"


def _body_text(part: Message) -> str:
    data = payload_bytes(part)
    text = decode_bytes(data, _charset(part))
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _safe_content_type(part: Message) -> str:
    content_type = _one_line(str(part.get_content_type())).lower()
    return (
        content_type
        if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", content_type)
        else "application/octet-stream"
    )


def _filename(part: Message, legacy: str | None = None) -> str | None:
    try:
        name = _named_part(part, legacy).get_filename()
    except Exception:
        return None
    if not name:
        return None
    # Left unsanitised on purpose: ``sanitise_filename`` drops NUL and controls.
    return _SURROGATE.sub("\ufffd", _decode_encoded_words(_unfold(_recover_8bit(name, legacy))))


_NAMING_FIELDS = ("content-disposition", "content-type")


def _named_part(part: Message, legacy: str | None) -> Message:
    """``part``, or, when a field that names it holds raw 8-bit octets, a stand-in
    with those fields decoded first: the standard library would turn the octets
    into U+FFFD before the name could be read."""
    fields = [(k, v) for k, v in part.raw_items() if k.lower() in _NAMING_FIELDS]
    if not any(_SURROGATE.search(str(value)) for _, value in fields):
        return part
    stand_in = Message()
    for key, value in fields:
        stand_in[key] = _recover_8bit(value, legacy)
    return stand_in


def _leaf_attachment(part: Message, content_type: str, legacy: str | None) -> Attachment:
    name = _filename(part, legacy)
    if not name and _transfer_encoding(part) in _UU_ENCODINGS:
        name = _uu_payload(str(part.get_payload()))[0]
    if content_type in _BINHEX or (name or "").lower().endswith(".hqx"):
        found = _binhex_attachment(part, name)
        if found is not None:
            return found
    return Attachment(
        filename=sanitise_filename(name, content_type),
        content_type=content_type,
        data=payload_bytes(part),
        inline=_is_inline(part),
    )


_BINHEX = ("application/mac-binhex40", "application/mac-binhex", "application/x-binhex40")


def _binhex_attachment(part: Message, name: str | None) -> Attachment | None:
    """The file a BinHex part carries, named as in its BinHex header (else the
    part's name without ``.hqx``); None when it is not BinHex after all."""
    found = decode_binhex(payload_bytes(part).decode("latin-1"))
    if found is None:
        return None
    stem = name[:-4] if name and name.lower().endswith(".hqx") else name
    filename = found.name or stem
    content_type = _MIME_TYPES.guess_type(filename or "")[0] or "application/octet-stream"
    return Attachment(filename=sanitise_filename(filename, content_type),
                      content_type=content_type, data=found.data)


_MIME_TYPES = mimetypes.MimeTypes(filenames=())  # the built-in table: hosts do not differ
_REFERENCE_PARAMETERS = ("access-type", "name", "site", "directory", "url", "server", "subject",
                         "mode", "size", "expiration", "permission")


def _external_reference(part: Message) -> Attachment:
    """message/external-body holds no file, only where one is: a short text of that
    reference (its parameters, and the commands for a mail server), named after
    the file it points to."""
    lines = [f"{key}: {_param(part, key)}" for key in _REFERENCE_PARAMETERS if _param(part, key)]
    children = _children(part)
    if _param(part, "access-type").lower() == "mail-server" and children:
        commands = _body_text(children[0]).strip()
        lines += ["", commands] if commands else []
    stem = _one_line(_filename(part) or _param(part, "name")) or "external-file"
    return Attachment(filename=sanitise_filename(f"{stem} (external reference).txt", "text/plain"),
                      content_type="text/plain", data=("\n".join(lines) + "\n").encode())


def _param(part: Message, key: str) -> str:
    """A Content-Type parameter as one line of text (RFC 2231 decoded), or ""."""
    try:
        value = part.get_param(key)
        return _one_line(email.utils.collapse_rfc2231_value(value)) if value else ""
    except Exception:
        return ""


def _is_inline(part: Message) -> bool:
    """Shown within the HTML body: it has a Content-ID and is not "attachment"."""
    return bool(part.get("content-id")) and part.get_content_disposition() != "attachment"


def _message_attachment(
    part: Message, content_type: str, linesep: str, legacy: str | None
) -> Attachment:
    """A nested message (message/rfc822, delivery-status …) kept whole; an
    enclosed message without a file name is named after its subject."""
    if part.is_multipart():
        data = b"".join(_serialise(p, linesep) for p in _children(part))
        if _transfer_encoding(part) in ("base64", "quoted-printable"):
            data = _decode_transfer(_transfer_encoding(part), data)
    else:
        data = payload_bytes(part)
    name = _filename(part, legacy)
    if not name and content_type in _ENCLOSED_MESSAGES:
        name = _subject_name(part, data, legacy)
    return Attachment(
        filename=sanitise_filename(name, content_type),
        content_type=content_type,
        data=data,
        inline=False,
    )


_ENCLOSED_MESSAGES = ("message/rfc822", "message/global")
_SUBJECT_PROBE = 64 * 1024


def _subject_name(part: Message, data: bytes, legacy: str | None) -> str | None:
    """``<Subject>.eml`` for an enclosed message, or None when it has no subject."""
    children = _children(part)
    if children and _transfer_encoding(part) not in ("base64", "quoted-printable"):
        header: Message = children[0]
    else:
        header = BytesHeaderParser(policy=compat32).parsebytes(data[:_SUBJECT_PROBE])
    raw = next((value for key, value in header.raw_items() if key.lower() == "subject"), "")
    subject = decode_header_text(_recover_8bit(raw, legacy))
    return f"{subject}.eml" if subject else None


def _serialise(msg: Message, linesep: str) -> bytes:
    buffer = io.BytesIO()
    try:
        policy = compat32.clone(linesep=linesep, max_line_length=0)
        BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(msg)
    except Exception:
        return b""
    return buffer.getvalue()


# --------------------------------------------------------------------------
# Transfer encodings and uuencode
# --------------------------------------------------------------------------


def payload_bytes(part: Message) -> bytes:
    """The decoded octets of a leaf part (base64, quoted-printable, uuencode)."""
    # The undecoded payload, surrogate escapes intact: ``get_payload()`` would
    # already have decoded raw 8-bit octets with the declared charset.
    payload = getattr(part, "_payload", None)
    if not isinstance(payload, str):
        return b""
    encoding = _transfer_encoding(part)
    if encoding in _UU_ENCODINGS:
        return _uu_payload(payload)[1]
    if encoding == "base64" and payload.isascii():
        return decode_base64(payload)  # no intermediate copy of a large payload
    return _decode_transfer(encoding, payload.encode("ascii", "surrogateescape"))


def _transfer_encoding(part: Message) -> str:
    value = _one_line(str(part.get("content-transfer-encoding", ""))).lower()
    return value.split(";", 1)[0].strip()


def _decode_transfer(encoding: str, data: bytes) -> bytes:
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def decode_base64(data: bytes | str) -> bytes:
    """Base64 that tolerates junk characters and missing or extra padding."""
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]
    return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))


_UU_BEGIN = re.compile(r"begin [0-7]{3,4} +(\S.*?)\s*")


def extract_uuencoded(text: str) -> tuple[str, list[Attachment]]:
    """Split ``begin 644 name`` … ``end`` blocks out of a plain-text body."""
    if "begin " not in text:
        return text, []
    lines = text.split("\n")
    kept: list[str] = []
    files: list[Attachment] = []
    index = 0
    while index < len(lines):
        match = _UU_BEGIN.fullmatch(lines[index])
        end = _uu_end(lines, index + 1) if match else None
        if match is None or end is None:
            kept.append(lines[index])
            index += 1
            continue
        files.append(_uu_attachment(match.group(1), lines[index + 1 : end]))
        index = end + 1
    return "\n".join(kept), files


_UU_ENCODINGS = ("x-uuencode", "uuencode", "x-uue", "uue")


def _uu_payload(payload: str) -> tuple[str | None, bytes]:
    """(the name on its ``begin`` line, the octets) of a part whose transfer
    encoding is uuencode; the payload as it is when it holds no uuencoded file."""
    text = payload.replace("\r\n", "\n").replace("\r", "\n")
    _, files = extract_uuencoded(text)
    if not files:
        return None, payload.encode("ascii", "surrogateescape")
    return files[0].filename, files[0].data


def _uu_end(lines: list[str], start: int) -> int | None:
    """Index of the ``end`` line, if every line before it is uuencoded.

    A blank line is a line of no octets: the last line of a file is often a
    lone space (the count of zero) that a mail server stripped."""
    for index in range(start, len(lines)):
        line = lines[index].rstrip()
        if line == "end":
            return index
        if len(line) > 100 or not all(" " <= ch <= "`" for ch in line):
            return None
    return None


def _uu_attachment(name: str, lines: list[str]) -> Attachment:
    data = b"".join(_uu_line(line.rstrip()) for line in lines if line.strip())
    content_type = "application/octet-stream"
    return Attachment(
        filename=sanitise_filename(name, content_type), content_type=content_type, data=data
    )


def _uu_line(line: str) -> bytes:
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        # Some encoders write lines too long; keep what the count says.
        count = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
        try:
            return binascii.a2b_uu(line[:count])
        except binascii.Error:
            return b""


# --------------------------------------------------------------------------
# Defects and the minimal fallback
# --------------------------------------------------------------------------


def _tree_defects(msg: Message) -> list[str]:
    """Short names of the parser's defects, from every part (bounded walk)."""
    names: list[str] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        names.extend(_defect_name(defect) for defect in part.defects)
        # A leaf's get_payload() copies its text (a 36 MB body, to look for surrogates):
        # only a multipart's list of parts is read.
        parts = part.get_payload() if depth < MAX_DEPTH and part.is_multipart() else None
        if isinstance(parts, list):
            stack.extend((p, depth + 1) for p in reversed(parts) if isinstance(p, Message))
    return names


def _defect_name(defect: object) -> str:
    """``StartBoundaryNotFoundDefect`` → ``start-boundary-not-found``."""
    if isinstance(defect, RepairedHeader):
        return defect.name
    name = type(defect).__name__.removesuffix("Defect")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def _unique(items: Iterable[_T]) -> list[_T]:
    """``items`` in order, each once."""
    return list(dict.fromkeys(items))


_HEADER_LINE = re.compile(r"^([^\s:]+):[ \t]*(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)


def _parse_minimal(raw: bytes, error: Exception) -> ParsedMessage:
    """Headers split by hand and the rest as text, after a parser failure."""
    try:
        parts = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
        head, body = (parts[0], parts[1]) if len(parts) == 2 else (raw, b"")
        return _minimal_message(head, body, error)
    except Exception as exc:
        raise MailError(f"cannot parse message: {type(exc).__name__}") from exc


def _minimal_message(head: bytes, body: bytes, error: Exception) -> ParsedMessage:
    raw: list[tuple[str, str]] = _HEADER_LINE.findall(decode_bytes(head, None))
    first = _first_values(raw)
    return ParsedMessage(
        message_id=_first_id(first.get("message-id", "")),
        in_reply_to=tuple(_message_ids(first.get("in-reply-to", ""))),
        references=tuple(_message_ids(first.get("references", ""))),
        subject=decode_header_text(first.get("subject", "")),
        sender=_sender(raw),
        to=_addresses(raw, "to"),
        cc=_addresses(raw, "cc"),
        reply_to=_addresses(raw, "reply-to"),
        date=parse_date(first.get("date", "")),
        text=decode_bytes(body, None).replace("\r\n", "\n").replace("\x00", ""),
        html=None,
        attachments=(),
        headers=_decoded_headers(raw),
        content_type="text/plain",
        defects=(f"parser-fallback: {type(error).__name__}",),
    )
