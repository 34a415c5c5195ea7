"""Step 1 of the pipeline: store the raw bytes before anything is parsed.

Every door calls :func:`store_raw`. It commits one ``inbox`` row holding the
envelope, and the exact bytes beside it in ``inbox_raw``, keyed by a
de-duplication key (the Message-ID, or the SHA-256 of the bytes when there is
none), so the same message arriving twice through any door is stored once.
Only the header block is looked at here, with the standard library's header
parser, which never raises.

Only the same message is a duplicate, not any message under a Message-ID
already stored: a sender (or a broken mailer, or an attacker) can give a new
report the id of another, and that report must not vanish behind a ``250``.
When the id is taken, the newcomer is compared with the message stored under
it by :func:`content_digest`: the bytes without the trace fields that mail
servers add on the way (``Received``, ``Return-Path``, ``Delivered-To``,
``Authentication-Results``, ``ARC-*``, ``X-Spam-*`` …, see
:data:`TRACE_FIELDS`), with LF line ends and no trailing empty lines. So the
same mail fetched by IMAP and delivered over SMTP, or redelivered by an MTA,
or read from a Maildir, is one message, and a different one is another.
The different one is stored under the key ``reused:<its digest>``: a row of
its own (``messages.message_id`` being unique, the pipeline stores it without
a Message-ID and flags it ``reused-message-id``), and a second copy of it
finds that key and is a duplicate in turn. When the bytes of the stored
message are gone (erased on request or purged by retention) there is nothing
to compare: the newcomer is taken for the same message, so that erased mail
does not come back as a new case.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    LargeBinary,
    Select,
    Table,
    bindparam,
    exc,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailroom.errors import StoreUnavailable
from mailroom.store.db import one_writer, stale_connection, unavailable_as_store_error
from mailroom.store.models import InboxItem, InboxRaw
from mailroom.vocabulary import InboxStatus

INBOX = cast(Table, InboxItem.__table__)
INBOX_RAW = cast(Table, InboxRaw.__table__)

MAX_ID_LENGTH = 500
HEADER_END = re.compile(rb"\r?\n\r?\n")
ANGLE_ID = re.compile(r"<([^<>\s]+)>")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


REUSED_ID_PREFIX = "reused:"  # the key of a message whose Message-ID another one has

# Fields that mail servers and mail stores add to a message on its way: two copies
# that differ only in these are the same message.
TRACE_FIELDS = frozenset({
    "received", "return-path", "delivered-to", "x-delivered-to", "x-original-to",
    "envelope-to", "x-envelope-to", "x-envelope-from", "delivery-date",
    "authentication-results", "x-original-authentication-results", "received-spf",
    "x-received", "x-virus-scanned", "x-virus-status", "x-greylist",
    "status", "x-status", "x-keywords", "x-uid", "content-length", "lines",
})
TRACE_PREFIXES = ("arc-", "x-spam", "x-ms-exchange-", "x-microsoft-antispam",
                  "x-forefront-antispam", "x-amavis", "x-rspamd", "x-mozilla-")
DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    """The inbox row a message went to, and whether it was already there."""

    inbox_id: int
    duplicate: bool


@dataclass(frozen=True)
class _Found:
    """What one INSERT met: the row, whether it was there already, its raw SHA-256."""

    inbox_id: int
    duplicate: bool
    raw_sha256: str


def header_block(raw: bytes) -> bytes:
    """The bytes up to the first empty line (the whole message if there is none)."""
    match = HEADER_END.search(raw)
    return raw[: match.end()] if match else raw


def normalise_message_id(value: str | None) -> str | None:
    """``<abc@host>`` → ``abc@host``; None for an empty or absurd value."""
    if not value:
        return None
    text = " ".join(str(value).split())
    match = ANGLE_ID.search(text)
    ident = match.group(1) if match else text.strip("<> ")
    if not ident or len(ident) > MAX_ID_LENGTH or " " in ident or CONTROL.search(ident):
        return None  # (PostgreSQL cannot even store a NUL in a text column)
    return ident


def raw_message_id(raw: bytes) -> str | None:
    """The Message-ID from the header block, without parsing the body.

    The bytes are read as UTF-8 (RFC 6532 allows it in Message-IDs); bytes that
    are not UTF-8 stay visible as ``\\xNN``, so two different identifiers never
    share a key (read as ASCII, both would become U+FFFD and the second message
    would be taken for a duplicate of the first).
    """
    block = header_block(raw).decode("utf-8", "backslashreplace")
    headers = HeaderParser(policy=compat32).parsestr(block, headersonly=True)
    return normalise_message_id(headers.get("Message-ID"))


def dedup_key(raw: bytes) -> str:
    ident = raw_message_id(raw)
    return f"mid:{ident}" if ident else f"sha256:{hashlib.sha256(raw).hexdigest()}"


def content_digest(raw: bytes) -> str:
    """SHA-256 of the message as its author sent it: the header fields but the trace
    fields (and an mbox ``From`` line), then the body, with LF line ends and without
    the empty lines at its end (an SMTP copy may carry one more than a file)."""
    head = header_block(raw)
    digest = hashlib.sha256()
    for field in _header_fields(head):
        if not is_trace_field(field):
            digest.update(field)
    digest.update(b"\n")
    _update_with_lf(digest, memoryview(raw)[len(head):])
    return digest.hexdigest()


def is_trace_field(field: bytes) -> bool:
    """A field added on the way (see :data:`TRACE_FIELDS`), or an mbox postmark."""
    if field.startswith(b"From "):
        return True
    name = field.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
    return name in TRACE_FIELDS or name.startswith(TRACE_PREFIXES)


def _header_fields(head: bytes) -> list[bytes]:
    """Each field of a header block with its folded lines, LF-terminated."""
    fields: list[list[bytes]] = []
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        elif line:
            fields.append([line])
    return [b"\n".join(lines) + b"\n" for lines in fields]


def _update_with_lf(digest: Any, body: memoryview) -> None:
    """Feed ``body`` with CRLF as LF and its trailing line ends dropped, a chunk at a
    time (no copy of a large body); a CR at a chunk's end waits for the next."""
    end = len(body)
    while end and body[end - 1] in (10, 13):
        end -= 1
    carry = b""
    for start in range(0, end, DIGEST_CHUNK):
        chunk = carry + bytes(body[start : min(start + DIGEST_CHUNK, end)])
        carry = b"\r" if chunk.endswith(b"\r") else b""
        digest.update(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
    digest.update(carry)


@dataclass(frozen=True)
class RawMessage:
    """One message for :func:`store_raw_many`: the bytes and the envelope."""

    raw: bytes
    door: str
    door_ref: str | None = None
    mail_from: str | None = None
    rcpt_to: Sequence[str] = ()


def store_raw(
    sessions: sessionmaker[Session],
    raw: bytes,
    *,
    door: str,
    door_ref: str | None = None,
    mail_from: str | None = None,
    rcpt_to: Sequence[str] = (),
) -> Stored:
    """Commit the raw message to the inbox (or find it there already).

    Raises :class:`~mailroom.errors.StoreUnavailable` when the database cannot
    be reached, so the door can answer with a temporary failure. A first try
    that failed on a stale pooled connection (the server was restarted since
    it was used) is tried once more, on a fresh one: the doors' engine does
    not ping a connection before using it. Should the first try have
    committed after all, the second finds its row and reports a duplicate.
    """
    message = RawMessage(raw, door, door_ref, mail_from, rcpt_to)
    return store_raw_many(sessions, [message])[0]


def store_raw_many(
    sessions: sessionmaker[Session], messages: Sequence[RawMessage]
) -> list[Stored]:
    """:func:`store_raw` for many messages in one transaction (``mailroom ingest``
    of a folder or a mailbox): all of them are committed, or none, before it
    returns; one receipt per message, in order. The same message twice in
    ``messages`` is stored once, and its second receipt is a duplicate."""
    engine = sessions.kw["bind"]
    try:
        return _store_all(engine, messages)
    except StoreUnavailable as error:
        if not stale_connection(error):
            raise
    return _store_all(engine, messages)


def _store_all(engine: Engine, messages: Sequence[RawMessage]) -> list[Stored]:
    with one_writer(engine), unavailable_as_store_error(), engine.begin() as conn:
        rows = [_row_values(message) for message in messages]
        if len(messages) > 1:
            stored = _store_all_new(conn, messages, rows)
            if stored is not None:
                return stored
        return [_store_one(conn, message, values)
                for message, values in zip(messages, rows, strict=True)]


def _row_values(message: RawMessage) -> dict[str, Any]:
    raw = message.raw
    return {
        "door": message.door, "door_ref": _storable(message.door_ref),
        "mail_from": _storable(message.mail_from),
        "rcpt_to": [_storable(r) for r in message.rcpt_to], "dedup_key": dedup_key(raw),
        "size": len(raw), "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "status": InboxStatus.NEW,
    }


def _store_all_new(conn: Connection, messages: Sequence[RawMessage],
                   rows: Sequence[Mapping[str, Any]]) -> list[Stored] | None:
    """The usual batch, in four statements: no key twice in it and none stored yet.
    The rows in one ``executemany`` (in the order of ``messages``, so their ids in
    arrival order, as one message at a time would give them), their ids read back
    by key, then the bytes in one ``executemany``. None, with nothing written, for
    any other batch: :func:`_store_one` then takes each message in turn. A key
    another writer stored since it was looked for makes the INSERT fail; its
    savepoint is rolled back and the batch goes the other way."""
    keys = [str(row["dedup_key"]) for row in rows]
    if len(set(keys)) < len(keys):
        return None
    if conn.execute(_ANY_STORED, {"keys": keys}).first() is not None:
        return None
    try:
        with conn.begin_nested():
            conn.execute(_INSERT_ROWS, list(rows))
    except exc.IntegrityError:
        return None
    ids: dict[str, int] = {key: int(inbox_id) for inbox_id, key in
                           conn.execute(_IDS_OF_KEYS, {"keys": keys})}
    conn.execute(_RAW_INSERT, [{"inbox_id": ids[key], "raw": message.raw}
                               for key, message in zip(keys, messages, strict=True)])
    return [Stored(ids[key], False) for key in keys]


def _store_one(conn: Connection, message: RawMessage, values: Mapping[str, Any]) -> Stored:
    raw, key = message.raw, str(values["dedup_key"])
    found = _store(conn, values, raw)
    if (found.duplicate and key.startswith("mid:") and found.raw_sha256 != values["raw_sha256"]
            and not _same_content(conn, found.inbox_id, raw)):
        # Another message has this Message-ID: this one is kept under its own key.
        found = _store(conn, {**values, "dedup_key": reused_key(raw)}, raw)
    return Stored(found.inbox_id, found.duplicate)


def reused_key(raw: bytes) -> str:
    """The key of a message whose Message-ID is already another message's."""
    return f"{REUSED_ID_PREFIX}{content_digest(raw)}"


def _store(conn: Connection, values: Mapping[str, object], raw: bytes) -> _Found:
    new_id = _insert_new(conn, values, raw)
    if new_id is not None:
        return _Found(int(new_id), False, str(values["raw_sha256"]))
    inbox_id, raw_sha256 = conn.execute(_EXISTING, {"dedup_key": values["dedup_key"]}).one()
    return _Found(int(inbox_id), True, raw_sha256)


def _same_content(conn: Connection, inbox_id: int, raw: bytes) -> bool:
    """Whether ``raw`` is the message of row ``inbox_id`` but for the trace fields
    (see the module docstring); its bytes are read only when they differ from ``raw``."""
    stored = conn.execute(_RAW_OF, {"inbox_id": inbox_id}).scalar()
    return stored is None or content_digest(stored) == content_digest(raw)


def _storable(text: str | None) -> str | None:
    """An envelope value as a text column can hold it: a NUL (which an SMTP client
    can send and PostgreSQL cannot store) becomes U+FFFD."""
    return text.replace("\x00", "\ufffd") if text else text


def _insert_new(conn: Connection, values: Mapping[str, object], raw: bytes) -> int | None:
    """INSERT … ON CONFLICT (dedup_key) DO NOTHING RETURNING id, and the bytes into
    ``inbox_raw`` when the row is new; the new id, or None for a duplicate.

    Core, not the ORM, and on PostgreSQL one statement (two data-modifying
    WITH clauses): the SMTP door runs this for every message.
    """
    if conn.dialect.name == "postgresql":
        return conn.execute(_POSTGRES_STORE, {**values, "raw": raw}).scalar()
    new_id = conn.execute(_SQLITE_INSERT, dict(values)).scalar()
    if new_id is not None:
        conn.execute(_RAW_INSERT, {"inbox_id": new_id, "raw": raw})
    return new_id


# The statements are built once: building one costs about as much as running it.
_FIELDS = ("door", "door_ref", "mail_from", "rcpt_to", "dedup_key", "size", "raw_sha256",
           "status")


def _bound_fields() -> dict[str, BindParameter[Any]]:
    return {name: bindparam(name, type_=INBOX.c[name].type) for name in _FIELDS}


def _postgres_store() -> Select[Any]:
    new = postgresql.insert(INBOX).values(_bound_fields()).on_conflict_do_nothing(
        index_elements=["dedup_key"]).returning(INBOX.c.id).cte("new_inbox")
    with_raw = insert(INBOX_RAW).from_select(
        ["inbox_id", "raw"], select(new.c.id, bindparam("raw", type_=LargeBinary)),
    ).cte("new_raw")
    return select(new.c.id).add_cte(with_raw)


_POSTGRES_STORE = _postgres_store()
_SQLITE_INSERT = sqlite.insert(INBOX).values(_bound_fields()).on_conflict_do_nothing(
    index_elements=["dedup_key"]).returning(INBOX.c.id)
_RAW_INSERT = insert(INBOX_RAW)
_ANY_STORED = select(INBOX.c.id).where(
    INBOX.c.dedup_key.in_(bindparam("keys", expanding=True))).limit(1)
_INSERT_ROWS = insert(INBOX)
_IDS_OF_KEYS = select(INBOX.c.id, INBOX.c.dedup_key).where(
    INBOX.c.dedup_key.in_(bindparam("keys", expanding=True)))
_EXISTING = select(INBOX.c.id, INBOX.c.raw_sha256).where(
    INBOX.c.dedup_key == bindparam("dedup_key"))
_RAW_OF = select(INBOX_RAW.c.raw).where(INBOX_RAW.c.inbox_id == bindparam("inbox_id"))
