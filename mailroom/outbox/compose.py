"""Build outgoing messages, safely.

Pure: ``compose_message`` turns already-rendered text into an
``email.message.EmailMessage``; nothing is sent or stored here.

Every value that may come from inbound mail (subjects, display names,
filenames, Message-IDs of the thread) is cleaned before it reaches a header:
control characters (CR, LF, NUL, ...) are replaced, so they can never start
a new header, and non-ASCII text is encoded per RFC 2047 by the policy.

The policy is ``email.policy.SMTP`` with ``refold_source="none"``: the
message-id headers (``In-Reply-To``, ``References``) are folded here, one id
per line, because the library would otherwise RFC 2047-encode a long id and
break threading. Every other header is folded by the library as usual.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from functools import lru_cache
from types import MappingProxyType

from mailroom.mailtypes import Address

POLICY = email_policy.SMTP.clone(refold_source="none")

MESSAGE_ID_PREFIX = "mailroom."
MAX_REFERENCES = 20  # RFC 5322 3.6.4: keep the first and the most recent ids
MAX_SUBJECT_LENGTH = 250
MAX_ID_LENGTH = 250

AUTO_RESPONSE_SUPPRESS = "All"
AUTO_PRECEDENCE = "auto_reply"

NO_HEADERS: Mapping[str, str] = MappingProxyType({})

# Headers compose_message owns; extra_headers may not set them.
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "reply-to",
        "auto-submitted",
        "x-loop",
        "x-auto-response-suppress",
        "precedence",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "sender",
        "return-path",
    }
)
_HEADER_NAME_RE = re.compile(r"[!-9;-~]+")  # printable ASCII except ":" (RFC 5322 ftext)
_ID_PART = r"[!#-'*+\-/-9=?A-Z^-~.]+"  # atext and dots: no space, <>, @, [], quotes, backslash
# Lenient on purpose for ids of the thread (some mailers omit the "@" or use a
# domain literal); our own ids are checked for the "@" separately.
_MESSAGE_ID_RE = re.compile(rf"{_ID_PART}(?:@(?:{_ID_PART}|\[[!-Z^-~]*\]))?")
_CONTENT_TYPE_RE = re.compile(r"([a-z0-9][a-z0-9!#$&^_.+-]*)/([a-z0-9][a-z0-9!#$&^_.+-]*)")
_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|r|wg|fwd?|tr|rv|enc)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*",
    re.IGNORECASE,
)
# The same prefixes anywhere in a subject (after a tag, after another prefix).
_ANY_REPLY_PREFIX_RE = re.compile(
    r"\b(?:re|aw|sv|vs|antw|r|wg|fwd?|tr|rv|enc)\s*(?:\[\d+\]|\(\d+\))?\s*:", re.IGNORECASE
)
_FORWARD_PREFIXES = frozenset({"fw", "fwd", "wg", "tr", "enc", "rv"})
_WHITESPACE_RE = re.compile(r"\s+")
_ENCODED_WORD_START_RE = re.compile(r"=\?")
# A line break not followed by folding white space: a new header line.
_BROKEN_FOLD_RE = re.compile(r"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n")


# -- cleaning values that came from mail -------------------------------------


def clean_header_text(value: str, *, max_length: int = MAX_SUBJECT_LENGTH) -> str:
    """One line of display text: control characters become spaces, runs collapse.

    Removes everything in Unicode categories Cc (C0/C1 controls, including
    CR, LF, NUL, TAB), Zl and Zp (line and paragraph separators) and
    surrogates, so the result can never break a header line.

    The text is already decoded, so ``=?`` in it is literal; it becomes
    ``= ?``. Otherwise the email library would decode it *again* when the
    header is set, and an encoded word hiding ``=0D=0A`` would put a raw
    CRLF on the wire (the CVE-2024-6923 class; Python 3.11 before 3.11.10
    does not check generated headers).
    """
    chars = (" " if _is_control(ch) else ch for ch in value)
    text = _WHITESPACE_RE.sub(" ", "".join(chars)).strip()
    text = _ENCODED_WORD_START_RE.sub("= ?", text)
    return text[:max_length].rstrip()


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in {"Cc", "Zl", "Zp", "Cs"}


def clean_message_id(value: str) -> str | None:
    """``<id@host>`` or ``id@host`` → ``id@host``; None when it is not a safe msg-id."""
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if len(text) > MAX_ID_LENGTH or not _MESSAGE_ID_RE.fullmatch(text):
        return None
    return text


def bound_references(ids: Sequence[str], *, limit: int = MAX_REFERENCES) -> list[str]:
    """Clean, de-duplicate and shorten a References list to ``limit`` ids.

    Unsafe ids are dropped; when too many remain the first (the thread's
    root) and the last ``limit - 1`` (the most recent replies) are kept.
    """
    seen: set[str] = set()
    clean: list[str] = []
    for raw in ids:
        mid = clean_message_id(raw)
        if mid is not None and mid not in seen:
            seen.add(mid)
            clean.append(mid)
    if len(clean) <= limit:
        return clean
    return [clean[0], *clean[len(clean) - (limit - 1) :]] if limit > 1 else clean[:limit]


# -- Message-IDs and subject tags ---------------------------------------------


def make_message_id(domain: str, ticket_ref: str | None = None) -> str:
    """A new unique id ``mailroom.[<ref>.]<random>@domain`` without brackets."""
    domain = domain.strip().lower()
    ref = re.sub(r"[^a-z0-9-]+", "-", ticket_ref.lower()).strip("-") if ticket_ref else ""
    middle = f"{ref}." if ref else ""
    mid = f"{MESSAGE_ID_PREFIX}{middle}{secrets.token_hex(12)}@{domain}"
    if clean_message_id(mid) != mid or mid.count("@") != 1:
        raise ValueError(f"unsuitable domain for a Message-ID: {domain!r}")
    return mid


def make_tag(tag_template: str, ident: int) -> str:
    """``[Helpline #{id}]`` and 123 → ``[Helpline #123]``."""
    _check_template(tag_template)
    return tag_template.replace("{id}", str(ident))


def tag_subject(subject: str, tag_template: str, ident: int) -> str:
    """Put the case's tag in ``subject`` exactly once, after at most one ``Re:``/``Fwd:``.

    Every tag of this template already in the subject goes first, whatever its
    number and wherever it stands, so a subject never carries two case tags and
    cannot grow by one tag per round of a mail loop:
    ``Re: [Helpline #51] Re: [Helpline #50] Hello`` for case 52 becomes
    ``Re: [Helpline #52] Hello``. Leading ``Re:``/``AW:``/``Fwd:`` … collapse
    into one.
    """
    rest = strip_tag(clean_header_text(subject), tag_template)
    prefix, rest = _split_reply_prefixes(rest)
    return clean_header_text(f"{prefix}{make_tag(tag_template, ident)} {rest}")


def untagged_subject(subject: str, tag_template: str) -> str:
    """A new case's subject: the mail's own, without our tags (the ``quoted-ticket``
    flag keeps the number) and then with at most one ``Re:``/``Fwd:``. A subject
    without our tags is kept as it is."""
    if not _strip_regex(tag_template).search(subject):
        return subject
    prefix, rest = _split_reply_prefixes(strip_tag(subject, tag_template))
    return f"{prefix}{rest}".strip()


def normalise_subject(subject: str, tag_template: str) -> str:
    """What a subject says, for telling whether two mails are about the same thing:
    no tags of ours, no ``Re:``/``AW:``/``SV:``/``Fwd:`` … anywhere, white space
    collapsed, case folded. ``RE: [Helpline #5] AW:  Fake Account`` → ``fake account``."""
    text = _ANY_REPLY_PREFIX_RE.sub(" ", strip_tag(subject, tag_template))
    return " ".join(text.split()).casefold()


def _split_reply_prefixes(subject: str) -> tuple[str, str]:
    """Strip every leading ``Re:``-like prefix; return one normalised prefix."""
    first: str | None = None
    while match := _REPLY_PREFIX_RE.match(subject):
        if first is None:
            first = re.sub(r"[^a-z]", "", match.group(0).lower())
        subject = subject[match.end() :]
    if first is None:
        return "", subject
    return ("Fwd: " if first in _FORWARD_PREFIXES else "Re: "), subject


def find_ticket_tag(subject: str, tag_template: str) -> int | None:
    """The ticket number of the first tag of this template in ``subject``, or None."""
    match = _tag_regex(tag_template).search(subject)
    return int(match.group(1)) if match else None


def strip_tag(subject: str, tag_template: str) -> str:
    """``subject`` without any tag of this template (whatever the number), also one
    that removing another would form (``[Helpline #[Helpline #1]2]``)."""
    regex, count = _strip_regex(tag_template), 1
    while count:
        subject, count = regex.subn(" ", subject)
    return _WHITESPACE_RE.sub(" ", subject).strip()


@lru_cache(maxsize=32)
def _tag_regex(tag_template: str) -> re.Pattern[str]:
    """Regex for a tag template: literal parts escaped, white space flexible. Numbers of
    up to 18 digits: a case id the database can hold."""
    return _template_regex(tag_template, r"\d{1,18}")


@lru_cache(maxsize=32)
def _strip_regex(tag_template: str) -> re.Pattern[str]:
    """Like :func:`_tag_regex`, but any number: a tag is removed whatever it says."""
    return _template_regex(tag_template, r"\d+")


def _template_regex(tag_template: str, digits: str) -> re.Pattern[str]:
    _check_template(tag_template)
    before, after = tag_template.split("{id}")
    return re.compile(
        _literal_pattern(before) + rf"\s*({digits})\s*" + _literal_pattern(after), re.IGNORECASE
    )


def _literal_pattern(text: str) -> str:
    words = text.split()
    pattern = r"\s*".join(re.escape(w) for w in words)
    return pattern


def _check_template(tag_template: str) -> None:
    if tag_template.count("{id}") != 1 or not tag_template.replace("{id}", "").strip():
        raise ValueError(f"subject tag template needs one '{{id}}' and some text: {tag_template!r}")


# -- the message ---------------------------------------------------------------


def compose_message(
    *,
    from_addr: Address,
    to: Sequence[Address],
    cc: Sequence[Address] = (),
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    reply_to: Address | None,
    auto_submitted: str | None,
    loop_token: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    extra_headers: Mapping[str, str] = NO_HEADERS,
    date: datetime | None = None,
) -> EmailMessage:
    """A complete message, ready for a transport.

    ``attachments`` are ``(filename, content_type, data)``. ``date`` defaults
    to now; pass it for reproducible output. ``auto_submitted`` (e.g.
    ``"auto-replied"``) marks the mail automatic, which also adds
    ``X-Auto-Response-Suppress: All`` and ``Precedence: auto_reply``.
    ``in_reply_to`` is appended to ``references`` when missing there.
    Raises ValueError for values that are ours to get right (a bad
    Message-ID, an invalid address, a header we own in ``extra_headers``).
    """
    msg = EmailMessage(policy=POLICY)
    _set_addresses(msg, from_addr=from_addr, to=to, cc=cc, reply_to=reply_to)
    msg["Subject"] = clean_header_text(subject)
    msg["Date"] = _check_aware(date) if date is not None else datetime.now(UTC)
    _set_thread_headers(msg, message_id, in_reply_to, references)
    _set_automatic_headers(msg, auto_submitted, loop_token)
    _set_extra_headers(msg, extra_headers)
    _set_body(msg, text, html, attachments)
    _set_stable_boundaries(msg, message_id, (text, html or ""))
    _tidy_mime_version(msg)
    _verify_generated_headers(msg)
    return msg


def check_values(
    *,
    from_addr: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    reply_to: Address | None,
    extra_headers: Mapping[str, str],
    date: datetime,
) -> None:
    """ValueError for what ``compose_message`` would refuse of these, without composing."""
    _require_recipients(to, cc)
    for address in (from_addr, *to, *cc, *([reply_to] if reply_to else [])):
        to_header_address(address)
    _check_extra_headers(extra_headers)
    _check_aware(date)


def _require_recipients(to: Sequence[Address], cc: Sequence[Address]) -> None:
    if not to and not cc:
        raise ValueError("a message needs at least one recipient")


def _check_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the Date of a message must be timezone-aware")
    return moment


def _set_addresses(
    msg: EmailMessage,
    *,
    from_addr: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    reply_to: Address | None,
) -> None:
    _require_recipients(to, cc)
    msg["From"] = to_header_address(from_addr)
    if to:
        msg["To"] = [to_header_address(a) for a in to]
    if cc:
        msg["Cc"] = [to_header_address(a) for a in cc]
    if reply_to is not None:
        msg["Reply-To"] = to_header_address(reply_to)


def is_writable_address(addr: str) -> bool:
    """True when an outgoing header can carry ``addr`` (mailroom sends no SMTPUTF8)."""
    try:
        to_header_address(Address(addr))
    except (ValueError, email_errors.MessageError):
        return False
    return True


def to_header_address(address: Address) -> HeaderAddress:
    """A header address with a cleaned display name (quoted by the policy as needed).

    A non-ASCII domain is written in its IDNA (``xn--``) form; a non-ASCII
    local part would need SMTPUTF8, which mailroom does not use: ValueError.
    """
    return _header_address(address.addr, address.name)


# Remembered: the same few addresses (helpline, team, requesters) are checked for every
# mail queued, and the header parser behind ``HeaderAddress`` is slow. A refused address
# raises every time (lru_cache keeps no exceptions).
@lru_cache(maxsize=4096)
def _header_address(addr: str, name: str) -> HeaderAddress:
    addr = _ascii_addr_spec(addr.strip())
    try:
        return HeaderAddress(display_name=clean_header_text(name), addr_spec=addr)
    except (ValueError, IndexError, email_errors.MessageError) as exc:  # the parser raises all
        raise ValueError(f"invalid email address: {addr!r}") from exc


def _ascii_addr_spec(addr: str) -> str:
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"invalid email address: {addr!r}")
    if any(_is_control(ch) or ch.isspace() for ch in addr):
        raise ValueError(f"invalid email address: {addr!r}")
    if not local.isascii():
        raise ValueError(f"non-ASCII local part needs SMTPUTF8, not supported: {addr!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid domain in email address: {addr!r}") from exc
    return f"{local}@{domain}"


def _set_thread_headers(
    msg: EmailMessage, message_id: str, in_reply_to: str | None, references: Sequence[str]
) -> None:
    own = clean_message_id(message_id)
    if own is None or "@" not in own:
        raise ValueError(f"invalid Message-ID: {message_id!r}")
    msg["Message-ID"] = f"<{own}>"
    parent = clean_message_id(in_reply_to) if in_reply_to else None
    refs = list(references)
    if parent is not None:
        msg.set_raw("In-Reply-To", f"<{parent}>")
        if parent not in {clean_message_id(r) for r in refs}:
            refs.append(parent)
    bounded = bound_references(refs)
    if bounded:
        msg.set_raw("References", _fold_ids(bounded))


def _fold_ids(ids: Sequence[str]) -> str:
    """``<a> <b>`` folded one id per line (the policy adds the final CRLF)."""
    return f"{POLICY.linesep} ".join(f"<{mid}>" for mid in ids)


def _set_automatic_headers(msg: EmailMessage, auto_submitted: str | None, loop_token: str) -> None:
    if auto_submitted is not None and auto_submitted.strip().lower() != "no":
        msg["Auto-Submitted"] = clean_header_text(auto_submitted)
        msg["X-Auto-Response-Suppress"] = AUTO_RESPONSE_SUPPRESS
        msg["Precedence"] = AUTO_PRECEDENCE
    loop = clean_header_text(loop_token)
    if not loop:
        raise ValueError("the X-Loop token must not be empty")
    msg["X-Loop"] = loop


def _check_extra_headers(extra_headers: Mapping[str, str]) -> None:
    """ValueError for a header name that is not one, or one ``compose_message`` owns."""
    for name in extra_headers:
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid header name: {name!r}")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"header {name} is set by compose_message, not by extra_headers")


def _set_extra_headers(msg: EmailMessage, extra_headers: Mapping[str, str]) -> None:
    _check_extra_headers(extra_headers)
    for name, value in extra_headers.items():
        msg[name] = clean_header_text(value, max_length=900)


def _set_body(
    msg: EmailMessage,
    text: str,
    html: str | None,
    attachments: Sequence[tuple[str, str, bytes]],
) -> None:
    body = _normalise_body(text)
    msg.set_content(body, subtype="plain", charset="utf-8", cte=_text_cte(body))
    if html is not None:
        page = _normalise_body(html)
        msg.add_alternative(page, subtype="html", charset="utf-8", cte=_text_cte(page))
    for filename, content_type, data in attachments:
        _add_attachment(msg, filename, content_type, data)


def _set_stable_boundaries(msg: EmailMessage, message_id: str, texts: Sequence[str]) -> None:
    """MIME boundaries derived from the Message-ID, so a mail composed again (a retry,
    a resend after a lapsed lease) is the same bytes. One that occurs in the text
    (which may quote inbound mail) is passed over; attachments are base64 and
    cannot hold the ``=_`` it starts with."""
    multiparts = [part for part in msg.walk() if part.is_multipart()]
    for index, part in enumerate(multiparts):
        for attempt in itertools.count():
            seed = f"{message_id}/{index}/{attempt}".encode()
            boundary = f"=_mr{hashlib.sha256(seed).hexdigest()[:32]}"
            if not any(boundary in text for text in texts):
                break
        part.set_boundary(boundary)


def _verify_generated_headers(msg: EmailMessage) -> None:
    """Fold every header of every part as the generator will; refuse a broken line.

    Defence in depth against header injection through the library itself
    (newer Pythons do this in the generator: ``verify_generated_headers``).
    """
    for part in msg.walk():
        for name, value in part.items():
            folded = POLICY.fold(name, value)
            if _BROKEN_FOLD_RE.search(folded.removesuffix(POLICY.linesep)) or "\0" in folded:
                raise ValueError(f"header {name} would break the header block; not composing")


def _tidy_mime_version(msg: EmailMessage) -> None:
    """One ``MIME-Version`` on the root; the library also stamps every sub-part."""
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]
    if "MIME-Version" not in msg:
        msg["MIME-Version"] = "1.0"


def _normalise_body(text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return body if body.endswith("\n") else body + "\n"


def _text_cte(body: str) -> str:
    """7bit when the text allows it, else quoted-printable (no 8BITMIME needed)."""
    if body.isascii() and all(len(line) <= 998 for line in body.split("\n")):
        return "7bit"
    return "quoted-printable"


def _add_attachment(msg: EmailMessage, filename: str, content_type: str, data: bytes) -> None:
    match = _CONTENT_TYPE_RE.fullmatch(content_type.strip().lower())
    maintype, subtype = match.groups() if match else ("application", "octet-stream")
    if maintype in {"message", "multipart"}:
        # The library only accepts parsed objects there; send the bytes as they are.
        maintype, subtype = "application", "octet-stream"
    name = clean_header_text(filename, max_length=200) or "attachment"
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
