"""Step 1 of the pipeline: store the raw bytes before anything is parsed.

Every door calls :func:`store_raw`. It commits one ``inbox`` row holding the
envelope, and the exact bytes beside it in ``inbox_raw``, keyed by a
de-duplication key (the Message-ID, or the SHA-256 of the bytes when there is
none), so the same message arriving twice through any door is stored once.
Only the header block is looked at here, with the standard library's header
parser, which never raises.
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
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailroom.errors import StoreUnavailable
from mailroom.store.db import one_writer, stale_connection, unavailable_as_store_error
from mailroom.store.models import InboxItem, InboxRaw

INBOX = cast(Table, InboxItem.__table__)
INBOX_RAW = cast(Table, InboxRaw.__table__)

MAX_ID_LENGTH = 500
HEADER_END = re.compile(rb"\r?\n\r?\n")
ANGLE_ID = re.compile(r"<([^<>\s]+)>")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Stored:
    """The inbox row a message went to, and whether it was already there."""

    inbox_id: int
    duplicate: bool


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
    key = dedup_key(raw)
    values = {
        "door": door, "door_ref": _storable(door_ref), "mail_from": _storable(mail_from),
        "rcpt_to": [_storable(r) for r in rcpt_to], "dedup_key": key, "size": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(), "status": "new",
    }
    engine = sessions.kw["bind"]
    try:
        return _store(engine, values, raw)
    except StoreUnavailable as error:
        if not stale_connection(error):
            raise
    return _store(engine, values, raw)


def _store(engine: Engine, values: Mapping[str, object], raw: bytes) -> Stored:
    with one_writer(engine), unavailable_as_store_error(), engine.begin() as conn:
        new_id = _insert_new(conn, values, raw)
        if new_id is not None:
            return Stored(int(new_id), duplicate=False)
        existing = conn.execute(_EXISTING, {"dedup_key": values["dedup_key"]})
        return Stored(int(existing.scalar_one()), duplicate=True)


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
_EXISTING = select(INBOX.c.id).where(INBOX.c.dedup_key == bindparam("dedup_key"))
