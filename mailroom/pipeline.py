"""Steps 2–7 of the pipeline for one inbox row; its writes in one transaction.

``process_inbox`` takes ``new`` rows in arrival order; each is handled by
``process_item``: what the bytes alone say is worked out first, outside any
transaction (parse within the abuse limits of :mod:`mailroom.intake.limits`,
classify, extract: a failure → ``bad``); then one write transaction claims the
row, threads the message, stores it and queues what follows, inside a
savepoint (an unexpected error → ``shunt``, with the error kept and nothing
half-written). On SQLite a writing transaction holds the only write lock,
which the doors need to store mail: a message parsed inside it (20,000 tiny
attachments took three minutes) kept every other delivery waiting. One bad
message never stops the ones after it. Each row ends with an ``outcome``:
``created``, ``threaded``, ``bounce``, ``automatic`` or ``loop``.

A message whose Message-ID a stored message has already (the door stored it
under a ``reused:`` key, or the store holds one of our own outgoing ids, or
another message parsed to that id) is a message of its own, never dropped as
a duplicate: the door keeps true duplicates out (:mod:`mailroom.store.inbox`). It is
stored without a Message-ID, since ``messages.message_id`` is unique and the
id belongs to the first (replies naming it keep threading there), and flagged
``reused-message-id``; it threads by its own In-Reply-To, References, subject
and signed address, and is answered like any other mail. A forged copy of
one of our outgoing ids is, by the classifier, our own mail looping back:
kept on the case its references lead to, never answered.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message as StdMessage
from typing import Any, cast

from sqlalchemy import BigInteger, Engine, Select, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, defer, object_session, sessionmaker

from mailroom.addresses import (
    TEAM,
    ReplyToken,
    TokenKind,
    TokenRole,
    parse_reply_address,
    verify_binding,
)
from mailroom.app import App, Clock
from mailroom.cases import participants
from mailroom.cases.attachments import listed_among, store_attachments
from mailroom.cases.commands import parse_commands
from mailroom.cases.decisions import Decisions, apply_decisions
from mailroom.cases.deliveries import clear_failing, mark_failing
from mailroom.cases.escalations import (
    escalation_for_message,
    escalation_of_token,
    handle_platform_reply,
)
from mailroom.cases.incoming import Facts, Incoming, Readings, Speaking
from mailroom.cases.merging import link_related, may_merge_by_itself, merge_tickets
from mailroom.cases.practitioner import handle_practitioner_reply
from mailroom.cases.repeats import record_targets
from mailroom.cases.replies import (
    Audience,
    decide_acknowledgement,
    refuse_practitioner_reply,
    respond_to_requester,
    token_expired,
)
from mailroom.cases.safeguarding import (
    ILLEGAL_FLAG,
    flag_listed_files,
    is_judged_illegal,
    keep_only_hashes,
    keyword_category,
)
from mailroom.cases.sla import first_due, raise_for_category, start_clock
from mailroom.cases.tickets import (
    NewCase,
    events_in_bulk,
    open_ticket,
    record_event,
    set_status,
    touch_ticket,
)
from mailroom.errors import MailError, StoreUnavailable
from mailroom.hours import OpeningHours
from mailroom.intake.authresults import authentication_failure, check_authentication
from mailroom.intake.bounces import BounceInfo, parse_bounce
from mailroom.intake.classify import (
    Classification,
    ClassificationKind,
    classify,
    vacation_reasons,
)
from mailroom.intake.extract import Extracted, extract
from mailroom.intake.limits import MessageLimits, parse_within_limits
from mailroom.intake.message import parse_mime, with_envelope_sender
from mailroom.intake.threads import (
    ThreadDecision,
    ThreadFacts,
    conversation_root,
    find_thread,
    named_ids,
)
from mailroom.intake.urls import find_urls, platform_for_url
from mailroom.mailtypes import Address, ParsedMessage
from mailroom.outbox.compose import MESSAGE_ID_PREFIX, find_ticket_tag, untagged_subject
from mailroom.platforms import Platforms
from mailroom.settings import Settings
from mailroom.store.blobs import BlobStore
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.hashes import ask_ahead
from mailroom.store.inbox import INBOX, REUSED_ID_PREFIX
from mailroom.store.locks import lock_key
from mailroom.store.models import (
    Escalation,
    InboxItem,
    Message,
    MessageRef,
    Ticket,
)
from mailroom.store.repository import ThreadStore, live_ticket, thread_links
from mailroom.vocabulary import (
    SYSTEM_ACTOR,
    AutomaticKind,
    Direction,
    InboxOutcome,
    InboxStatus,
    Speaker,
    TicketStatus,
)

log = logging.getLogger("mailroom.pipeline")

ERROR_LIMIT = 4000
REUSED_MESSAGE_ID = "reused-message-id"  # the flag of a message whose id another one has


@dataclass(frozen=True)
class Prepared:
    """What the bytes alone say about a message, worked out outside any transaction."""

    parsed: ParsedMessage
    std: StdMessage
    classification: Classification
    readings: Readings | None = None  # for mail a person wrote (the only kind extracted)


@dataclass(frozen=True)
class Failed:
    """A message that could not be prepared: ``bad`` (its fault) or ``shunt`` (ours)."""

    status: InboxStatus
    error: BaseException


def process_inbox(app: App, *, limit: int | None = None) -> dict[str, int]:
    """Process every ``new`` inbox row (oldest first); return outcome counts.

    The ids are read a batch at a time (a row another worker took meanwhile is
    ``skipped`` by ``process_item``), until a read finds none.
    """
    counts: dict[str, int] = {}
    last_id = 0
    while limit is None or sum(counts.values()) < limit:
        wanted = NEW_BATCH if limit is None else min(NEW_BATCH, limit - sum(counts.values()))
        with unavailable_as_store_error(), app.sessions() as session:
            ids = list(session.execute(_NEW_IDS, {"last_id": last_id, "wanted": wanted}).scalars())
        if not ids:
            break
        for item_id in ids:
            last_id = item_id
            outcome = process_item(app, item_id)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


NEW_BATCH = 100
_NEW_IDS = (
    select(InboxItem.id)
    .where(InboxItem.status == InboxStatus.NEW, InboxItem.id > bindparam("last_id"))
    .order_by(InboxItem.id).limit(bindparam("wanted"))
)


def process_item(app: App, item_id: int, raw: bytes | None = None) -> str:
    """Run steps 2–7 for one inbox row; return its outcome (or bad/shunt/skipped).

    In three steps, so that the write lock is held for the writes only: read the
    row (a short transaction); work out what the bytes say (:func:`prepare`, no
    transaction); then claim the row again and write (:func:`write_message`).
    The row changes only in that last transaction: a process killed at any
    point leaves it ``new``, to be processed from the start next time.

    ``raw``: the row's bytes when the caller still holds them (``mailroom
    ingest`` does), so that they are neither read back nor held twice.
    """
    with unavailable_as_store_error(), working_on(app.engine, item_id) as ours:
        if not ours:
            return InboxOutcome.SKIPPED
        item = _read_new(app.sessions, item_id, with_raw=raw is None)
        if item is None:
            return InboxOutcome.SKIPPED
        prepared = prepare(app.settings, app.platforms, item,
                           raw if raw is not None else item.raw or b"")
        return write_message(app, item_id, prepared)


def prepare(settings: Settings, platforms: Platforms, item: InboxItem,
            raw: bytes) -> Prepared | Failed:
    """Steps 3, 4 and 6 from the bytes and the envelope alone, outside any
    transaction: parse within the limits (over one, or unparseable → ``bad``),
    classify, and extract what a person wrote (an internal error → ``shunt``)."""
    try:
        parsed, tree = parse_within_limits(raw, message_limits(settings))
        parsed = with_envelope_sender(parsed, item.mail_from)
    except Exception as exc:  # noqa: BLE001 - any parser failure means unparseable
        return Failed(InboxStatus.BAD, exc)
    try:
        std = tree if tree is not None else parse_mime(raw)
        classification = _classify(settings, item, std)
        readings = (read_both_ways(platforms, parsed)
                    if classification.kind == ClassificationKind.NORMAL else None)
    except MailError as exc:
        return Failed(InboxStatus.BAD, exc)
    except Exception as exc:  # noqa: BLE001 - an internal error shunts the message
        log.exception("inbox %s shunted", item.id)
        return Failed(InboxStatus.SHUNT, exc)
    return Prepared(parsed, std, classification, readings)


def message_limits(settings: Settings) -> MessageLimits:
    return MessageLimits(max_attachments=settings.max_attachments,
                         max_mime_parts=settings.max_mime_parts,
                         max_header_bytes=settings.max_header_bytes)


def read_both_ways(platforms: Platforms, parsed: ParsedMessage) -> Readings:
    """:class:`Readings` with one pass of quote stripping."""
    as_new = extract(platforms, parsed, new_ticket=True)
    if as_new.text == parsed.text.strip():
        return Readings(as_new, as_new)  # nothing quoted: the same URLs either way
    urls = find_urls(as_new.text)
    found = (platform_for_url(url, platforms) for url in urls)
    named = tuple(dict.fromkeys(key for key in found if key))
    return Readings(as_new, Extracted(text=as_new.text, urls=tuple(urls), platforms=named))


def write_message(app: App, item_id: int, prepared: Prepared | Failed) -> str:
    """The write transaction: claim the row (still ``new``; on PostgreSQL locked,
    ``SKIP LOCKED``), then record the failure, or thread, store and queue."""
    with app.sessions.begin() as session:
        item = _claim(session, item_id, with_raw=False)
        if item is None:
            return InboxOutcome.SKIPPED
        outcome, done = write_claimed(app, session, item, prepared)
        if done is not None:
            # Core: the one change to the row, without a unit of work of its own.
            session.connection().execute(_ITEM_DONE, done)
        return outcome


def write_claimed(
    app: App, session: Session, item: InboxItem, prepared: Prepared | Failed
) -> tuple[str, dict[str, Any] | None]:
    """Record the failure, or thread, store and queue, for a claimed row inside a
    savepoint (an error → ``bad``/``shunt``, and nothing of the message is
    written). Returns the outcome and, for a message handled, the values of the
    row's one change (:data:`_ITEM_DONE`), for the caller to make."""
    if isinstance(prepared, Failed):
        return _fail(item, prepared.status, prepared.error, now=app.now()), None
    # The row changes once, at the end (attempts, message, outcome in one UPDATE):
    # a change made now would be written on its own when the savepoint begins.
    savepoint = session.begin_nested()
    try:
        outcome, message = handle(app, session, item, prepared)
        savepoint.commit()
    except MailError as exc:
        savepoint.rollback()
        return _fail(item, InboxStatus.BAD, exc, now=app.now()), None
    except Exception as exc:  # noqa: BLE001 - an internal error shunts the message
        savepoint.rollback()
        log.exception("inbox %s shunted", item.id)
        return _fail(item, InboxStatus.SHUNT, exc, now=app.now()), None
    return outcome, _done(item, outcome, message, now=app.now())


def _done(item: InboxItem, outcome: str, message: Message | None, *,
          now: datetime) -> dict[str, Any]:
    """The values of a handled row's one change (:data:`_ITEM_DONE`), processed at ``now``."""
    return {"item_id": item.id, "attempts": item.attempts + 1, "outcome": outcome,
            "message_pk": message.id if message is not None else None, "processed_at": now}


# --- many rows at once: ``mailroom ingest`` of a folder or a mailbox ----------------------

WRITE_SLICE = 0.5  # seconds: the longest a batch keeps the write lock before it commits
CLAIM_CHUNK = 20  # rows claimed by one SELECT


def process_batch(app: App, items: Sequence[tuple[int, bytes]],
                  outcomes: dict[int, str]) -> None:
    """Steps 2–7 for rows the caller has just stored, with their bytes (``mailroom
    ingest``): the same work as :func:`process_item` for each, in fewer
    transactions. Each row's outcome goes into ``outcomes`` once its
    transaction has committed.

    The rows are read in one short transaction, prepared one by one outside any
    (parse, classify, extract), then written in as few transactions as fit in
    :data:`WRITE_SLICE` each (on SQLite the doors wait for the write lock
    meanwhile). Should a message of one fail, the transaction is written
    again with a savepoint per message, as in :func:`write_message`: the one
    that fails rolls back to it and is marked ``bad`` or ``shunt``, and the
    others go on (:func:`_write_slice`). Each message starts with an empty
    session, so it reads what the ones before it wrote as a new transaction
    would. A process killed before a commit leaves the rows of that
    transaction ``new``, and the next run processes them from the start.
    The ids must be distinct. Raises ``StoreUnavailable`` when the database
    goes away; the rows not in ``outcomes`` then stay ``new``.
    """
    with unavailable_as_store_error():
        rows = _read_new_many(app.sessions, [item_id for item_id, _raw in items])
        prepared = {item_id: prepare(app.settings, app.platforms, rows[item_id], raw)
                    for item_id, raw in items if item_id in rows}
        for item_id, _raw in items:
            if item_id not in rows:
                outcomes[item_id] = InboxOutcome.SKIPPED
        waiting = list(prepared)
        while waiting:
            waiting = _write_slice(app, waiting, prepared, outcomes)


def _write_slice(app: App, ids: list[int], prepared: dict[int, Prepared | Failed],
                 outcomes: dict[int, str]) -> list[int]:
    """One write transaction over the first of ``ids``; the ids left for the next.

    First without a savepoint per message (two statements each): when every
    message goes through, that is all. When one fails, the whole transaction
    is rolled back and the slice is written again with a savepoint per message
    (:func:`write_claimed`), so that only the failing one is marked. The work
    is only written by the transaction that commits; what is outside it (a
    blob, idempotent) is the same either way."""
    try:
        return _write_slice_once(app, ids, prepared, outcomes, guarded=False)
    except StoreUnavailable:
        raise
    except Exception:  # noqa: BLE001 - any failure: again, each message on its own
        log.info("a message failed in a batch: its transaction again, a savepoint each")
    return _write_slice_once(app, ids, prepared, outcomes, guarded=True)


def _write_slice_once(app: App, ids: list[int], prepared: dict[int, Prepared | Failed],
                      outcomes: dict[int, str], *, guarded: bool) -> list[int]:
    began = time.monotonic()
    written: dict[int, str] = {}
    done: list[dict[str, Any]] = []
    rest: list[int] = []
    claimed: dict[int, InboxItem] = {}
    # Unguarded, any error rolls the whole transaction back: its events can wait for
    # its end and go in one statement (a savepoint each would need them at its end).
    with app.sessions.begin() as session, (
            contextlib.nullcontext() if guarded else events_in_bulk(session)):
        for index, item_id in enumerate(ids):
            if index % CLAIM_CHUNK == 0:  # claimed a few at a time: a slice may end early
                claimed = _claim_many(session, ids[index:index + CLAIM_CHUNK])
                _ask_ahead(session, [work.parsed for work in (prepared[i] for i in claimed)
                                     if isinstance(work, Prepared)])
            item = claimed.get(item_id)
            if item is None:  # another worker took it meanwhile
                written[item_id] = InboxOutcome.SKIPPED
                continue
            session.expunge_all()  # what the messages before it left behind
            session.add(item)
            write = write_claimed if guarded else _write_unguarded
            written[item_id], values = write(app, session, item, prepared[item_id])
            if values is not None:
                done.append(values)
            session.flush()
            if time.monotonic() - began >= WRITE_SLICE:
                rest = ids[index + 1:]
                break
        if done:
            session.connection().execute(_ITEM_DONE, done)
    for item_id in written:
        prepared.pop(item_id, None)
    outcomes.update(written)
    return rest


def _ask_ahead(session: Session, messages: Sequence[ParsedMessage]) -> None:
    """What each of the messages claimed together would ask first, asked once for all:
    the conversation locks, and the hash blocklist about their files."""
    serialise_conversations(session, messages)
    files = [a for parsed in messages for a in parsed.attachments]
    ask_ahead(session, [a.sha256 for a in files], [a.md5 for a in files])


def _write_unguarded(
    app: App, session: Session, item: InboxItem, prepared: Prepared | Failed
) -> tuple[str, dict[str, Any] | None]:
    """:func:`write_claimed` without the savepoint: an error goes up to the caller."""
    if isinstance(prepared, Failed):
        return _fail(item, prepared.status, prepared.error, now=app.now()), None
    outcome, message = handle(app, session, item, prepared)
    return outcome, _done(item, outcome, message, now=app.now())


def _read_new_many(sessions: sessionmaker[Session], ids: Sequence[int]) -> dict[int, InboxItem]:
    """The rows still ``new`` (without their bytes), read and let go."""
    with sessions() as session:
        return {item.id: item for item in session.execute(
            _MANY_NEW.options(defer(InboxItem.raw)), {"ids": list(ids)}).scalars()}


def _claim_many(session: Session, ids: Sequence[int]) -> dict[int, InboxItem]:
    stmt = _MANY_NEW.options(defer(InboxItem.raw))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return {item.id: item for item in session.execute(stmt, {"ids": list(ids)}).scalars()}


_MANY_NEW = select(InboxItem).where(InboxItem.id.in_(bindparam("ids", expanding=True)),
                                    InboxItem.status == InboxStatus.NEW)


_ITEM_DONE = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("item_id"))
    .values(status=InboxStatus.DONE, error=None, outcome=bindparam("outcome"),
            attempts=bindparam("attempts"), message_pk=bindparam("message_pk"),
            processed_at=bindparam("processed_at"))
)


def _read_new(sessions: sessionmaker[Session], item_id: int, *,
              with_raw: bool) -> InboxItem | None:
    """The row while it is ``new`` (with its bytes if asked), read and let go."""
    with sessions() as session:
        stmt = _claim_statement(with_raw=with_raw, lock=False)
        return session.execute(stmt, {"item_id": item_id}).scalar()


def _claim(session: Session, item_id: int, *, with_raw: bool = True) -> InboxItem | None:
    stmt = _claim_statement(with_raw=with_raw, lock=is_postgres(session))
    return session.execute(stmt, {"item_id": item_id}).scalar()


@functools.cache
def _claim_statement(*, with_raw: bool, lock: bool) -> Select[Any]:
    """Built once per kind: a new statement for each message cost more than running it."""
    stmt = select(InboxItem).where(InboxItem.id == bindparam("item_id"),
                                   InboxItem.status == InboxStatus.NEW)
    if not with_raw:
        stmt = stmt.options(defer(InboxItem.raw))
    return stmt.with_for_update(skip_locked=True) if lock else stmt


_WORKING: set[tuple[str, int]] = set()  # SQLite: the rows this process's workers are on
_WORKING_GUARD = threading.Lock()


@contextlib.contextmanager
def working_on(engine: Engine, item_id: int) -> Iterator[bool]:
    """Whether this worker may work on the row now (False: another one is at it).

    Several workers walk the same ``new`` rows (the daemon's worker and the
    scheduler's job; on PostgreSQL several processes), and the row is claimed
    only in the write transaction, after the work: without this, each would
    parse every message and all but one throw the work away. Only a guard
    against waste: the claim alone decides who writes. On PostgreSQL a
    session advisory lock, on a connection of its own for the while (the
    server drops it with the connection should the process die); on SQLite
    (one process) a set of the rows being worked on.
    """
    if engine.dialect.name != "postgresql":
        key = (str(engine.url), item_id)
        with _WORKING_GUARD:
            ours = key not in _WORKING
            _WORKING.add(key)
        try:
            yield ours
        finally:
            if ours:
                with _WORKING_GUARD:
                    _WORKING.discard(key)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        params = {"k": lock_key(f"inbox:{item_id}")}
        ours = bool(conn.execute(_TRY_LOCK, params).scalar())
        try:
            yield ours
        finally:
            if ours:
                _unlock(conn, params)


def _unlock(conn: Any, params: dict[str, int]) -> None:
    """Release the advisory lock; a connection that cannot must not go back to the
    pool still holding it."""
    try:
        conn.execute(_UNLOCK, params)
    except Exception:  # noqa: BLE001 - the lock ends with the connection
        conn.invalidate()


_TRY_LOCK = text("SELECT pg_try_advisory_lock(:k)")
_UNLOCK = text("SELECT pg_advisory_unlock(:k)")


def _fail(item: InboxItem, status: InboxStatus, exc: BaseException, *, now: datetime) -> str:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if status == InboxStatus.SHUNT:
        detail += "\n" + "".join(traceback.format_tb(exc.__traceback__)[-5:])
    item.attempts += 1
    item.status, item.error = status, detail[:ERROR_LIMIT]
    item.processed_at = now
    log.info("inbox %s is %s: %s", item.id, status, detail.splitlines()[0])
    return status


def handle(
    app: App, session: Session, item: InboxItem, prepared: Prepared
) -> tuple[str, Message | None]:
    """Steps 5 and 7 for a prepared message, and of step 2 what the door could not
    see (a Message-ID a stored message has): the outcome, and the message stored.

    A message whose Message-ID is taken (see the module docstring) goes on
    without it, flagged: its links are read again without it, so that it is
    not taken for the messages that reply to the other.
    """
    parsed = prepared.parsed
    serialise_conversation(session, parsed)
    named = named_ids(parsed.message_id, parsed.in_reply_to, parsed.references)
    links = thread_links(session, parsed.message_id, named)
    flags: list[str] = []
    if parsed.message_id and (links.stored or item.dedup_key.startswith(REUSED_ID_PREFIX)):
        log.info("inbox %s: Message-ID %s is another message's; stored without it",
                 item.id, parsed.message_id)
        parsed, flags = replace(parsed, message_id=None), [REUSED_MESSAGE_ID]
        links = thread_links(session, None, named)
    facts, escalation = read_facts(app.settings, session, Facts(
        item=item, parsed=parsed, std=prepared.std, classification=prepared.classification,
        links=links, readings=prepared.readings))
    incoming = Incoming(facts, flags=[*flags, *facts.speaking.flags])
    return act(app, session, incoming, escalation), incoming.message


def read_facts(settings: Settings, session: Session, facts: Facts
               ) -> tuple[Facts, Escalation | None]:
    """Step 3, who wrote the message: the facts with who spoke (:func:`speaking_of`),
    and the escalation it answers, if any (a platform speaks then)."""
    speaking = speaking_of(settings, facts.item, facts.parsed)
    facts = replace(facts, speaking=speaking)
    escalation = escalation_for_message(session, facts)
    if escalation is not None:
        facts = replace(facts, speaking=replace(speaking, speaker=Speaker.PLATFORM))
    return facts, escalation


def act(app: App, session: Session, incoming: Incoming, escalation: Escalation | None) -> str:
    """Steps 4–7 for a message that is not a duplicate; returns the outcome."""
    kind = incoming.classification.kind
    if kind == ClassificationKind.BOUNCE:
        return act_on_bounce(app, session, incoming)
    decision = find_thread(thread_facts(app.settings, incoming, escalation or escalation_of_token(
        session, incoming.token)), ThreadStore(session, incoming.links))
    if kind == ClassificationKind.LOOP:
        return record_unanswered(app, session, incoming, decision, outcome=InboxOutcome.LOOP)
    if kind == ClassificationKind.AUTO_REPLY:
        return record_unanswered(app, session, incoming, decision, outcome=InboxOutcome.AUTOMATIC)
    return act_on_mail(app, session, incoming, decision)


def serialise_conversation(session: Session, parsed: ParsedMessage) -> None:
    """On PostgreSQL, two workers must not thread messages of one conversation at the
    same moment (neither would see the other's message and each would open a case):
    take a transaction lock per Message-ID the message is or names, in one order,
    before anything about them is read."""
    serialise_conversations(session, [parsed])


def serialise_conversations(session: Session, messages: Sequence[ParsedMessage]) -> None:
    """:func:`serialise_conversation` for several messages in one statement (a batch
    takes the locks of the messages it claims together), all the keys in one order.
    A key this transaction holds already is not asked for again: the locks last
    until the transaction ends, and the set of keys held is the transaction's own."""
    if not is_postgres(session):
        return  # SQLite runs one writing transaction at a time anyway
    wanted = {lock_key(f"thread:{i}") for parsed in messages
              for i in (parsed.message_id, *parsed.in_reply_to, *parsed.references) if i}
    held = _locks_held(session)
    if wanted - held:
        session.execute(_LOCK_IN_ORDER, {"keys": sorted(wanted - held)})
        held |= wanted


def _locks_held(session: Session) -> set[int]:
    """The conversation locks the session's current transaction holds."""
    transaction = session.get_transaction()
    info = session.info
    if info.get("conversation_locks_of") is not transaction:
        info["conversation_locks_of"], info["conversation_locks"] = transaction, set()
    return cast(set[int], info["conversation_locks"])


# One statement for all of a message's locks, taken in the order of the array (a
# volatile function in the select list is called after the rows are sorted).
_LOCK_IN_ORDER = text(
    "SELECT pg_advisory_xact_lock(t.k) FROM unnest(:keys) WITH ORDINALITY AS t(k, n) ORDER BY t.n"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(BigInteger)))


def _classify(settings: Settings, item: InboxItem, std: StdMessage) -> Classification:
    return classify(std, envelope_sender=item.mail_from, our_domains=settings.domains,
                    loop_token=settings.loop_token, our_message_id_prefix=MESSAGE_ID_PREFIX)


def speaking_of(settings: Settings, item: InboxItem, parsed: ParsedMessage) -> Speaking:
    """Who wrote the message: a signed reply address among the recipients and who may
    use it, and whether the sender's domain failed authentication.

    A requester's or platform's token is valid on its own. A practitioner's is
    bound to the practitioner it was sent to (or to the team, see
    :mod:`mailroom.addresses`), and runs commands only when the reply comes from
    that practitioner (any practitioner, for a team token), authenticated as
    the settings ask. A practitioner replying with another practitioner's token,
    or with one issued before tokens were bound, is ``refused``: the reply is
    kept on the case, runs nothing, and they are sent a fresh link
    (:func:`mailroom.cases.replies.refuse_practitioner_reply`). Anyone else using a
    practitioner's token is an ordinary sender, threaded by the headers.
    """
    sender = parsed.sender
    sender_addr = sender.addr.lower() if sender else None
    flags: list[str] = []
    unverified = _domain_failure(settings, parsed)
    if unverified:
        flags.append("unverified-sender")
    is_staff = bool(sender_addr and sender_addr in settings.practitioners)
    binding, token = None, None
    for address in _recipient_addresses(item, parsed):
        found = parse_reply_address(address, local=settings.local_part, domains=settings.domains,
                                    secret=settings.secret)
        if found is None:
            continue
        binding = _binding(settings, found, sender_addr)
        if binding is None:
            flags.append("bad-token")
            continue
        token = ReplyToken(found.kind, found.ident, found.role, True, found.mac, found.issued)
        break
    speaking = Speaking(token=token, unverified=unverified)
    if token and token.role == TokenRole.PRACTITIONER and binding:
        speaking = _practitioner_speaks(settings, parsed, speaking, is_staff, binding, flags)
    elif token and token.role == TokenRole.PLATFORM:
        speaking = replace(speaking, speaker=Speaker.PLATFORM)
    elif is_staff:
        flags.append("practitioner-without-token")
    return replace(speaking, flags=tuple(flags))


def _practitioner_speaks(settings: Settings, parsed: ParsedMessage, speaking: Speaking,
                         is_staff: bool, binding: str, flags: list[str]) -> Speaking:
    """A practitioner's token: the practitioner speaks when the reply is theirs and
    authenticated; else the sender is an ordinary one (no token)."""
    if not is_staff or (binding in ("own", "team")
                        and not _authenticated(settings, parsed, speaking, flags)):
        flags.append("unauthenticated-practitioner")
        return replace(speaking, token=None)
    refused = {"other": "another-practitioner", "unbound": "old-link"}.get(binding)
    return replace(speaking, speaker=Speaker.PRACTITIONER, refused=refused)


def _binding(settings: Any, token: ReplyToken, sender: str | None) -> str | None:
    """How a token is bound (see :func:`binding_of`; ``plain`` for a valid unbound
    token of a requester or platform); None when it is forged or tampered with."""
    if not token.bound:
        if not token.valid:
            return None
        return "unbound" if token.role == TokenRole.PRACTITIONER else "plain"
    if token.role != TokenRole.PRACTITIONER:
        return None
    found = binding_of(settings, token, sender)
    return None if found == "none" else found


def binding_of(settings: Any, token: ReplyToken, sender: str | None) -> str:
    """``own`` (issued to the sender), ``team``, ``other`` (another practitioner's),
    ``unbound`` (an unbound token) or ``none`` (issued to nobody we know)."""
    if not token.bound:
        return "unbound" if token.valid else "none"
    if sender and verify_binding(token, settings.secret, sender):
        return "own"
    if verify_binding(token, settings.secret, TEAM):
        return "team"
    if any(verify_binding(token, settings.secret, other) for other in settings.practitioners):
        return "other"
    return "none"


def _authenticated(settings: Settings, parsed: ParsedMessage, speaking: Speaking,
                   flags: list[str]) -> bool:
    """Never when the From domain failed authentication; with ``require_authentication``,
    only with a DKIM or DMARC pass for it."""
    if speaking.unverified:
        return False
    if not settings.require_authentication:
        return True
    sender = parsed.sender
    verdict = check_authentication(
        parsed.headers.get("authentication-results", []),
        sender.addr if sender else None, trusted=settings.trusted_authserv_ids)
    if not verdict.passed:
        flags.append(f"authentication:{verdict.reason}")
    return verdict.passed


def reads_as_vacation_notice(subject: str, text: str) -> bool:
    """A practitioner's reply without automatic-reply headers that is an absence notice
    (and gives no command: an autoresponder writes none) is never relayed."""
    return not parse_commands(text).commands and bool(vacation_reasons(subject, text))


def _domain_failure(settings: Settings, parsed: ParsedMessage) -> str | None:
    """Why a trusted Authentication-Results header says the From domain failed DMARC (or
    DKIM and SPF both failed): the message is flagged ``unverified-sender``."""
    sender = parsed.sender
    return authentication_failure(
        parsed.headers.get("authentication-results", []),
        sender.addr if sender else None, trusted=settings.trusted_authserv_ids)


def _recipient_addresses(item: InboxItem, parsed: ParsedMessage) -> list[str]:
    found = [a.lower() for a in item.rcpt_to or []]
    found += [a.addr for a in (*parsed.to, *parsed.cc)]
    return list(dict.fromkeys(found))


def thread_facts(
    settings: Settings, incoming: Incoming, escalation: Escalation | None = None
) -> ThreadFacts:
    parsed, token = incoming.parsed, incoming.token
    token_ticket = token.ident if token and token.kind == TokenKind.TICKET else None
    if token and token.kind == TokenKind.ESCALATION and escalation is not None:
        token_ticket = escalation.ticket_id  # the escalation's signed address names its case
    return ThreadFacts(
        message_id=parsed.message_id, in_reply_to=parsed.in_reply_to,
        references=parsed.references, sender=parsed.sender.addr if parsed.sender else None,
        tagged_ticket=find_ticket_tag(parsed.subject, settings.subject_tag),
        token_ticket=token_ticket,
        conversation=conversation_root(parsed.header("thread-index")),
    )


def act_on_bounce(app: App, session: Session, incoming: Incoming) -> str:
    """Record a bounce against the outgoing message it bounces; never open a ticket."""
    info = parse_bounce(incoming.std)
    ticket_id, original = None, None
    if info.original_message_id:
        original = session.execute(
            select(Message).where(Message.message_id == info.original_message_id)
        ).scalar()
        if original is not None:
            ticket_id = live_ticket(session, original.ticket_id) if original.ticket_id else None
            original.flags = [*original.flags, "bounced"]
    if info.permanent is not None:
        incoming.flags.append("permanent" if info.permanent else "temporary")
    message = store_message(app.settings, app.blobs, session, incoming, kind=AutomaticKind.BOUNCE,
                            ticket_id=ticket_id, clock=app.clock)
    if ticket_id:
        record_event(session, action="bounce.received", actor=_sender(incoming), at=app.now(),
                     ticket_id=ticket_id, message_pk=message.id,
                     recipients=list(info.recipients), original=info.original_message_id)
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None and original is not None and info.permanent is not False:
            failed = info.recipients or _sole_recipient(original)
            apply_decisions(app.settings, app.renderer, session, mark_failing(
                app.settings, session, ticket, failed, reason=_bounce_reason(incoming, info),
                bounce=message, now=app.now()), clock=app.clock)
    return InboxOutcome.BOUNCE


def _sole_recipient(original: Message) -> tuple[str, ...]:
    """The bounced mail's recipient, when a bounce names none and there was only one."""
    sent_to = original.recipients or {}
    people = [*sent_to.get("to", []), *sent_to.get("cc", [])]
    return (people[0],) if len(people) == 1 else ()


def _bounce_reason(incoming: Incoming, info: BounceInfo) -> str:
    said = " ".join((incoming.parsed.subject or "").split())[:200] or "a delivery failure"
    kind = "permanent failure" if info.permanent else "failure (permanence not stated)"
    return f"{said} ({kind}, from {_sender(incoming)})"


def record_unanswered(
    app: App, session: Session, incoming: Incoming, decision: ThreadDecision, *, outcome: str
) -> str:
    """Automatic mail and our own mail: kept (on its ticket if it threads), never answered."""
    kind = AutomaticKind.LOOP if outcome == InboxOutcome.LOOP else AutomaticKind.AUTO_REPLY
    ticket_id = decision.ticket_id
    message = store_message(app.settings, app.blobs, session, incoming, kind=kind,
                            ticket_id=ticket_id, clock=app.clock)
    if ticket_id:
        record_event(session, action="message.received", actor=_sender(incoming), at=app.now(),
                     ticket_id=ticket_id, message_pk=message.id, kind=kind)
    if (incoming.speaker == Speaker.PRACTITIONER and outcome == InboxOutcome.AUTOMATIC
            and ticket_id):
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:  # never relayed; the practitioner is told (now and then)
            apply_decisions(app.settings, app.renderer, session, refuse_practitioner_reply(
                app.settings, session, ticket, message, "automatic-reply", now=app.now()),
                clock=app.clock)
    if incoming.speaker == Speaker.PLATFORM and outcome == InboxOutcome.AUTOMATIC:
        # records their case number only
        apply_decisions(app.settings, app.renderer, session,
                        handle_platform_reply(app, session, incoming), clock=app.clock)
    return outcome


def act_on_mail(app: App, session: Session, incoming: Incoming, decision: ThreadDecision) -> str:
    """Open a ticket or add to one; merge tickets the message proves are one."""
    now = app.now()
    incoming.created = decision.ticket_id is None
    incoming.extracted = reading_for(app.platforms, incoming)
    if incoming.created:
        incoming.ticket = open_case(app.settings, app.hours, session, incoming, now)
        if decision.quoted_ticket:
            incoming.flags.append(f"quoted-ticket:{decision.quoted_ticket}")
    else:
        assert decision.ticket_id is not None
        incoming.ticket = touch_ticket(session, decision.ticket_id, now)
    ticket = incoming.ticket
    assert ticket is not None
    if decision.merge:
        join_conversation(app.settings, app.blobs, session, incoming, decision, clock=app.clock)
    # Set before anything is asked of the database (the blocklist, then the message
    # stored), so that the ticket's changes go in one UPDATE. Its updated_at is moved
    # as it is read or opened.
    if not incoming.created and incoming.extracted.platforms:
        known = list(ticket.platforms or [])
        ticket.platforms = known + [p for p in incoming.extracted.platforms if p not in known]
    flag_illegal_content(app, session, incoming)
    audience = (requester_audience(app.settings, session, incoming, now=now)
                if incoming.speaker == Speaker.REQUESTER else None)
    message = store_message(app.settings, app.blobs, session, incoming, kind=incoming.speaker,
                            ticket_id=ticket.id, clock=app.clock)
    if incoming.links is None or incoming.links.orphans:
        adopt_orphans(session, message)
    for other in incoming.related:
        link_related(session, ticket, other, at=now, reason=decision.rule, message_pk=message.id)
    after_message(app, session, incoming, message, decision, audience)
    return InboxOutcome.CREATED if incoming.created else InboxOutcome.THREADED


def open_case(settings: Settings, hours: OpeningHours, session: Session, incoming: Incoming,
              now: datetime) -> Ticket:
    """A new case, opened with what its first message gives it: the subject without our
    tags (a stranger quoting one is recorded by the quoted-ticket flag), the country of
    its sender's address, the platforms the message names and, for a requester's case,
    when its first answer is due (``cases.sla``)."""
    parsed = incoming.parsed
    sender = parsed.sender.addr if parsed.sender else None
    assert incoming.extracted is not None
    return open_ticket(session, NewCase(
        subject=untagged_subject(parsed.subject, settings.subject_tag), requester=parsed.sender,
        at=now, prefix=settings.reference_prefix,
        country=settings.signposting.country_of(sender),
        platforms=tuple(incoming.extracted.platforms),
        sla_due_at=(first_due(settings, hours, now)
                    if incoming.speaker == Speaker.REQUESTER else None)))


def join_conversation(
    settings: Settings, blobs: BlobStore, session: Session, incoming: Incoming,
    decision: ThreadDecision, *, clock: Clock,
) -> None:
    """The other cases this message proves are its conversation: merged (at the
    ``clock``'s time once they are read) when that adds no recipient to either, else
    kept apart and linked once the message is stored (:mod:`mailroom.cases.merging`);
    the files of a case that became illegal settled."""
    ticket = incoming.ticket
    assert ticket is not None
    same: list[Ticket] = []
    for other_id in decision.merge:
        other = session.get(Ticket, other_id)
        if other is None or other.merged_into is not None or other.id == ticket.id:
            continue
        (same if may_merge_by_itself(ticket, other) else incoming.related).append(other)
    if same:
        merged = merge_tickets(session, ticket, same, at=clock(), reason=decision.rule)
        if merged.became_illegal:
            keep_only_hashes(settings, blobs, session, ticket, clock=clock)


def reading_for(platforms: Platforms, incoming: Incoming) -> Extracted:
    """Step 6 for the message as threaded: from its readings when it has them."""
    readings = incoming.readings
    if readings is None:
        return extract(platforms, incoming.parsed, new_ticket=incoming.created)
    return readings.as_new if incoming.created else readings.as_follow_up


def adopt_orphans(session: Session, message: Message) -> None:
    """Automatic mail that arrived before this message, and replied to it, joins its ticket.

    Only called when the message's ``links`` saw such mail: the conversation's lock
    (``serialise_conversation``) keeps others from storing more in the meantime."""
    if not message.message_id or message.ticket_id is None:
        return
    session.execute(
        update(Message)
        .where(Message.ticket_id.is_(None), Message.direction == Direction.IN,
               Message.id.in_(select(MessageRef.message_pk).where(
                   MessageRef.ref == message.message_id)))
        .values(ticket_id=message.ticket_id)
        # Orphans were stored by earlier transactions: none is in this session.
        .execution_options(synchronize_session=False)
    )


def requester_audience(settings: Settings, session: Session, incoming: Incoming, *,
                       now: datetime) -> Audience:
    """For a requester-side message, before it is stored: whether its sender is on
    the case (``pending-sender`` when not) and, for a new case, whether it is
    acknowledged at ``now`` (``no-ack:<why>`` when not), so that the message's row is written
    once, with these flags among its own. Nothing these read changes when the
    message is stored."""
    ticket, sender = incoming.ticket, incoming.parsed.sender
    assert ticket is not None
    known = incoming.created or bool(sender and participants.may_receive(ticket, sender.addr))
    if not known:
        incoming.flags.append(participants.PENDING_SENDER)
    ack = (decide_acknowledgement(settings, session, incoming, now=now)
           if incoming.created else None)
    if ack is not None and ack.refused is not None:
        incoming.flags.append(f"no-ack:{ack.refused}")
    return Audience(new_sender=None if known or sender is None else sender.addr.lower(),
                    unverified=incoming.unverified, related=tuple(incoming.related),
                    acknowledgement=ack, sender_known=known)


def after_message(
    app: App, session: Session, incoming: Incoming, message: Message, decision: ThreadDecision,
    audience: Audience | None = None,
) -> None:
    """Participants, status and the audit trail once the message is on its ticket
    (``audience``: :func:`requester_audience`, for a requester-side message), then what
    the case decides, by who spoke, applied (:func:`mailroom.cases.decisions.apply_decisions`)."""
    ticket, now, actor = incoming.ticket, app.now(), _sender(incoming)
    assert ticket is not None
    action = "ticket.created" if incoming.created else "message.received"
    record_event(session, action=action, actor=actor, at=now, ticket_id=ticket.id,
                 message_pk=message.id, rule=decision.rule, kind=incoming.speaker)
    apply_decisions(app.settings, app.renderer, session,
                    act_by_speaker(app, session, incoming, message, audience, now=now),
                    clock=app.clock)


def act_by_speaker(
    app: App, session: Session, incoming: Incoming, message: Message, audience: Audience | None,
    *, now: datetime,
) -> Decisions:
    """What the case decides about the message, by who spoke."""
    if incoming.speaker == Speaker.PRACTITIONER:
        return after_practitioner_reply(app, session, incoming, now=now)
    if incoming.speaker == Speaker.PLATFORM:
        return handle_platform_reply(app, session, incoming)
    if incoming.speaker != Speaker.REQUESTER:
        return Decisions()
    assert audience is not None  # decided for a requester's message before it was stored
    return after_requester_message(app, session, incoming, message, audience, now=now)


def after_requester_message(
    app: App, session: Session, incoming: Incoming, message: Message, audience: Audience,
    *, now: datetime,
) -> Decisions:
    """Participants and status for a requester-side message (``audience``: whether its
    sender is on the case, decided and flagged before it was stored), then the
    helpline's answer."""
    ticket, actor = incoming.ticket, _sender(incoming)
    assert ticket is not None
    sender = incoming.parsed.sender
    known = audience.sender_known
    if sender is not None:
        clear_failing(session, ticket, sender.addr, actor=actor, at=now,
                      why="mail arrived from it", message_pk=message.id)
    if known and ticket.first_response_at is not None and ticket.sla_due_at is None:
        start_clock(app.settings, app.hours, ticket, now)  # answered before: the next is due
    participants.record_pending(session, ticket, _people(app.settings, incoming), at=now,
                                message_pk=message.id, actor=actor)
    if known and ticket.status in (TicketStatus.CLOSED, TicketStatus.WAITING):
        set_status(session, ticket, TicketStatus.OPEN, actor=actor, at=now, message_pk=message.id)
    return respond_to_requester(app, session, incoming, audience)


def after_practitioner_reply(app: App, session: Session, incoming: Incoming, *,
                             now: datetime) -> Decisions:
    """Run the reply, unless its link is someone else's or has expired (at ``now``)."""

    ticket, token, message = incoming.ticket, incoming.token, incoming.message
    assert ticket is not None and message is not None
    refused = incoming.refused
    if refused is None and token is not None and token_expired(app.settings, ticket, token,
                                                               now=now):
        refused = "expired"
    if refused is None and reads_as_vacation_notice(incoming.parsed.subject, message.text or ""):
        refused = "automatic-reply"
    if refused is not None:
        return refuse_practitioner_reply(app.settings, session, ticket, message, refused, now=now)
    return handle_practitioner_reply(app, session, incoming)


def flag_illegal_content(app: App, session: Session, incoming: Incoming) -> None:
    """Before anything of the message is stored or sent, so that the safeguarding rules
    apply to it: a listed file (whoever sent it) flags the case illegal, and a
    requester's words from the keyword lists put the case in ``sextortion`` or
    ``illegal_images``."""
    ticket = incoming.ticket
    if ticket is None:
        return
    listed = incoming.listed = listed_among(session, incoming.parsed.attachments)
    if listed:
        flag_listed_files(app.settings, app.blobs, session, ticket, listed, clock=app.clock)
    if incoming.speaker != Speaker.REQUESTER or is_judged_illegal(ticket):
        return
    found = keyword_category(f"{incoming.parsed.subject}\n{incoming.parsed.text}", app.settings)
    if found is None:
        return
    (category, hits), before = found, ticket.category
    ticket.category = category
    ticket.flags = [*dict.fromkeys([*(ticket.flags or []), ILLEGAL_FLAG])]
    record_event(session, action="ticket.category", actor=SYSTEM_ACTOR, at=app.now(),
                 ticket_id=ticket.id, before=before, after=category,
                 reason="keywords", keywords=hits)
    raise_for_category(app.settings, app.hours, session, ticket, actor=SYSTEM_ACTOR,
                       clock=app.clock)


def _people(settings: Settings, incoming: Incoming) -> list[Address]:
    """The sender and everyone else on the message who is not us or staff."""
    parsed = incoming.parsed
    ours = set(settings.practitioners) | {settings.team_address or ""}
    people = [parsed.sender] if parsed.sender else []
    people += [*parsed.cc, *parsed.to]
    return [
        p for p in people
        if p.addr not in ours and p.addr.rsplit("@", 1)[-1] not in settings.domains
    ]


def store_message(
    settings: Settings, blobs: BlobStore, session: Session, incoming: Incoming, *, kind: str,
    ticket_id: int | None, clock: Clock,
) -> Message:
    """Write the message (stored at the ``clock``'s time), the ids it refers to and its
    attachments (by the safeguarding rules: :func:`_store_attachments`)."""
    parsed, extracted = incoming.parsed, incoming.extracted
    message = Message(
        ticket_id=ticket_id, direction=Direction.IN, kind=kind,
        sender=parsed.sender.addr if parsed.sender else incoming.item.mail_from,
        sender_name=parsed.sender.name if parsed.sender else None,
        recipients={"to": [a.addr for a in parsed.to], "cc": [a.addr for a in parsed.cc]},
        message_id=parsed.message_id, in_reply_to=" ".join(parsed.in_reply_to) or None,
        references=" ".join(parsed.references) or None,
        conversation=conversation_root(parsed.header("thread-index")),
        subject=parsed.subject[:2000], date=parsed.date,
        text=extracted.text if extracted else parsed.text,
        urls=list(extracted.urls) if extracted else [],
        flags=sorted({*incoming.flags, *incoming.classification.reasons}),
        created_at=clock(), attachments=[],  # known empty until stored below: no SELECT
    )
    token = incoming.token
    if token and token.kind == TokenKind.ESCALATION and token.role == TokenRole.PLATFORM:
        message.escalation_id = token.ident  # a practitioner's reply is not the platform's
    session.add(message)
    session.flush()
    # Core, one executemany: nothing reads these rows back through this session.
    refs = dict.fromkeys(r[:512] for r in (*parsed.in_reply_to, *parsed.references) if r)
    if refs:
        session.connection().execute(
            _INSERT_REFS, [{"message_pk": message.id, "ref": ref} for ref in refs])
    if kind == Speaker.REQUESTER and message.urls:
        record_targets(session, message.id, message.urls)
    _store_attachments(settings, blobs, message, incoming, clock=clock)
    incoming.message = message  # process_item points the inbox row at it
    return message


_INSERT_REFS = insert(cast(Table, MessageRef.__table__))


def _store_attachments(settings: Settings, blobs: BlobStore, message: Message, incoming: Incoming,
                       *, clock: Clock) -> None:
    """The message's attachments, stored by the safeguarding rules
    (:func:`mailroom.cases.attachments.store_attachments`)."""
    if not incoming.parsed.attachments:
        return
    session = object_session(message)
    assert session is not None
    ticket = incoming.ticket or (session.get(Ticket, live_ticket(session, message.ticket_id))
                                 if message.ticket_id else None)
    # Asked once a message: flag_illegal_content asked before anything was written, and
    # what was listed since can only be the files of a case that is illegal now.
    store_attachments(settings, blobs, session, message, ticket, incoming.parsed.attachments,
                      clock=clock, listed=incoming.listed)


def _sender(incoming: Incoming) -> str:
    sender = incoming.parsed.sender
    return sender.addr if sender else (incoming.item.mail_from or "unknown")
