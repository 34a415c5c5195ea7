"""Retention (SPEC section 10): purge what closed cases said, keep what they count for.

A ticket is due when it has been ``closed`` (or set aside as ``spam`` or
``out_of_remit``) for longer than
``retention.closed_ticket_months`` (by ``closed_at``, calendar months) and has
not been purged since it was last closed. Purging a ticket removes:

- every message's ``text``, ``subject``, sender's display name and URLs;
- the raw bytes of the inbound mail behind those messages (``inbox_raw``) and
  the content of the outgoing mail of the ticket (``outbox.rendered`` and
  ``subject``), except mail still waiting to be sent;
- the attachments' bytes and file names: rows stay with ``stored = False``,
  type, size and hash; the blob file is deleted once no stored attachment
  row anywhere still uses the same content;
- participants' names, the ticket's subject, requester name and the context
  ``#context`` left for an escalation;
- escalations' context (the practitioner's text) and reported URLs, and
  ``urls`` kept in audit events.

Subjects go too: professionals write names and places into them ("Fake
account of Mrs Smith at St Mary's"). Addresses stay, so that a data-protection
request can still find the case; what is kept is what the report reads
(dates, category, role, platforms, first response, status, escalation
platforms, dates and outcomes). ``ticket.purged_at`` is set and a
``retention.purged`` event recorded (months and cut-off only).

Idempotent: a second run finds nothing due, and a ticket reopened and closed
again after a purge is purged again. Blob files are deleted after the
database commit; each run also deletes blobs that no stored attachment uses
any more (left behind by an interrupted run or an erasure). A dry run counts
what would go and changes nothing. The ``retention`` scheduler job runs it
daily, once across all processes.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Delete,
    Select,
    Update,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from mailroom.app import App
from mailroom.cases.tickets import record_event
from mailroom.store.blobs import BlobStore
from mailroom.store.models import (
    AttachmentRow,
    Base,
    Escalation,
    Event,
    InboxItem,
    InboxRaw,
    Message,
    MessageTarget,
    OutboxItem,
    Participant,
    Ticket,
    outbox_has_content,
)
from mailroom.vocabulary import SET_ASIDE, SYSTEM_ACTOR, OutboxStatus, TicketStatus

__all__ = [
    "PurgeCounts",
    "RetentionResult",
    "apply_retention",
    "blob_candidates",
    "delete_unreferenced_blobs",
    "due_tickets",
    "execute_update",
    "months_before",
    "purge_tickets",
    "sweep_orphan_blobs",
]

BATCH = 100
SENT = (OutboxStatus.SENT, OutboxStatus.FAILED)  # outgoing mail that will not be sent again
EVENT_CONTENT_KEYS = ("urls",)


@dataclass
class PurgeCounts:
    """Rows changed (or that would be) by kind."""

    messages: int = 0
    reported_targets: int = 0
    inbound_raw: int = 0
    outbound_raw: int = 0
    attachments: int = 0
    participants: int = 0
    escalations: int = 0
    events: int = 0

    def add(self, other: PurgeCounts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class RetentionResult:
    """What a run purged, or with ``dry_run`` would purge (``mailroom retention --json``)."""

    dry_run: bool
    months: int
    cutoff: datetime
    tickets: list[str] = field(default_factory=list)  # references
    counts: PurgeCounts = field(default_factory=PurgeCounts)
    blobs: int = 0  # attachment files deleted (or that would be)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "months": self.months,
                "cutoff": self.cutoff.isoformat(), "tickets": list(self.tickets),
                **asdict(self.counts), "blobs": self.blobs}

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        counts = ", ".join(f"{k.replace('_', ' ')}: {v}"
                           for k, v in [*asdict(self.counts).items(), ("blob files", self.blobs)])
        refs = ", ".join(self.tickets) if self.tickets else "none"
        return (f"retention ({self.months} months, closed before {self.cutoff:%Y-%m-%d}): "
                f"{verb} {len(self.tickets)} tickets ({refs}); {counts}")


# --- what a purge changes ----------------------------------------------------------


def _messages_of(ids: Sequence[int]) -> Select[Any]:
    return select(Message.id).where(Message.ticket_id.in_(ids))


@dataclass(frozen=True)
class _Step:
    name: str  # the PurgeCounts field
    model: type[Base]
    where: Callable[[Sequence[int]], ColumnElement[bool]]
    values: dict[str, Any] | None  # None: the rows are deleted


STEPS: tuple[_Step, ...] = (
    _Step("messages", Message, lambda ids: and_(
        Message.ticket_id.in_(ids),
        or_(Message.text.is_not(None), Message.subject != "", Message.sender_name.is_not(None))),
        {"text": None, "subject": "", "sender_name": None, "urls": []}),
    _Step("reported_targets", MessageTarget,
          lambda ids: MessageTarget.message_pk.in_(_messages_of(ids)), None),
    _Step("inbound_raw", InboxRaw, lambda ids: InboxRaw.inbox_id.in_(
        select(InboxItem.id).where(InboxItem.message_pk.in_(_messages_of(ids)))), None),
    _Step("outbound_raw", OutboxItem, lambda ids: and_(
        OutboxItem.ticket_id.in_(ids), OutboxItem.status.in_(SENT),
        or_(outbox_has_content(), OutboxItem.subject != "")),
        {"rendered": None, "subject": "", "files": None}),
    _Step("attachments", AttachmentRow, lambda ids: and_(
        AttachmentRow.message_pk.in_(_messages_of(ids)),
        or_(AttachmentRow.stored.is_(True), AttachmentRow.filename != "")),
        {"stored": False, "filename": ""}),
    _Step("participants", Participant, lambda ids: and_(
        Participant.ticket_id.in_(ids), Participant.name.is_not(None)), {"name": None}),
    _Step("escalations", Escalation, lambda ids: Escalation.ticket_id.in_(ids),
          {"context": None, "urls": []}),
)


def purge_tickets(session: Session, ids: Sequence[int], *, now: datetime) -> PurgeCounts:
    """Remove the content of these tickets in the caller's transaction (no blob deletion)."""
    counts = PurgeCounts()
    for step in STEPS:
        where = step.where(ids)
        stmt: Update | Delete = delete(step.model).where(where) if step.values is None \
            else update(step.model).where(where).values(**step.values)
        setattr(counts, step.name, execute_update(session, stmt))
    counts.events = _scrub_events(session, ids)
    execute_update(session, update(Ticket).where(Ticket.id.in_(ids)).values(
        subject="", requester_name=None, escalation_context=None, purged_at=now))
    return counts


def execute_update(session: Session, stmt: Update | Delete) -> int:
    """Run a bulk UPDATE or DELETE (objects in the session are not synchronised);
    rows changed."""
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount)


def count_purge(session: Session, ids: Sequence[int]) -> PurgeCounts:
    """What :func:`purge_tickets` would change, changing nothing."""
    counts = PurgeCounts()
    for step in STEPS:
        stmt = select(func.count()).select_from(step.model).where(step.where(ids))
        setattr(counts, step.name, session.execute(stmt).scalar_one())
    counts.events = sum(1 for _ in _events_with_content(session, ids))
    return counts


def _events_with_content(session: Session, ids: Sequence[int]) -> Iterator[Event]:
    events = session.execute(select(Event).where(Event.ticket_id.in_(ids))).scalars()
    return (e for e in events if any(k in (e.detail or {}) for k in EVENT_CONTENT_KEYS))


def _scrub_events(session: Session, ids: Sequence[int]) -> int:
    changed = 0
    for event in list(_events_with_content(session, ids)):
        event.detail = {k: v for k, v in event.detail.items() if k not in EVENT_CONTENT_KEYS}
        changed += 1
    session.flush()
    return changed


# --- blobs -----------------------------------------------------------------------------


def blob_candidates(session: Session, ids: Sequence[int]) -> set[str]:
    """Hashes of the stored attachments of these tickets (before they are purged)."""
    stmt = select(AttachmentRow.sha256).where(
        AttachmentRow.message_pk.in_(_messages_of(ids)), AttachmentRow.stored.is_(True))
    return set(session.execute(stmt.distinct()).scalars())


def delete_unreferenced_blobs(sessions: sessionmaker[Session], blobs: BlobStore,
                              shas: Iterable[str]) -> int:
    """Delete the blob of each hash no stored attachment row uses; how many files went."""
    wanted = sorted(set(shas))
    if not wanted:
        return 0
    with sessions() as session:
        used = set(session.execute(select(AttachmentRow.sha256).where(
            AttachmentRow.sha256.in_(wanted), AttachmentRow.stored.is_(True))).scalars())
    return sum(1 for sha in wanted if sha not in used and blobs.delete(sha))


def sweep_orphan_blobs(sessions: sessionmaker[Session], blobs: BlobStore) -> int:
    """Delete blobs that only unstored (purged, erased) attachment rows still name."""
    with sessions() as session:
        shas = set(session.execute(select(AttachmentRow.sha256).where(
            AttachmentRow.stored.is_(False)).distinct()).scalars())
    return delete_unreferenced_blobs(sessions, blobs, shas)


def _blobs_freed(session: Session, shas: set[str], ticket_ids: set[int]) -> set[str]:
    """Hashes whose every stored use is on one of ``ticket_ids`` (for a dry run)."""
    holders: dict[str, set[int | None]] = {sha: set() for sha in shas}
    for chunk in _chunks(sorted(shas), BATCH * 5):
        rows = session.execute(
            select(AttachmentRow.sha256, Message.ticket_id)
            .join(Message, AttachmentRow.message_pk == Message.id)
            .where(AttachmentRow.sha256.in_(chunk), AttachmentRow.stored.is_(True)))
        for sha, ticket_id in rows:
            holders[sha].add(ticket_id)
    return {sha for sha, users in holders.items() if users <= ticket_ids}


# --- the run ---------------------------------------------------------------------------


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to month end)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def due_tickets(session: Session, cutoff: datetime) -> list[tuple[int, str]]:
    """(id, reference) of tickets closed (or set aside: spam, out of remit) before
    ``cutoff`` and not purged since."""
    stmt = select(Ticket.id, Ticket.reference).where(
        Ticket.status.in_((TicketStatus.CLOSED, *SET_ASIDE)), Ticket.closed_at.is_not(None),
        Ticket.closed_at < cutoff,
        or_(Ticket.purged_at.is_(None), Ticket.purged_at < Ticket.closed_at),
    ).order_by(Ticket.id)
    return [(tid, ref or f"#{tid}") for tid, ref in session.execute(stmt)]


def apply_retention(app: App, *, dry_run: bool) -> RetentionResult:
    """Purge every due ticket (in batches), or with ``dry_run`` only count."""
    months = app.settings.retention_closed_months
    result = RetentionResult(dry_run, months, months_before(app.now(), months))
    with app.sessions() as session:
        due = due_tickets(session, result.cutoff)
    result.tickets = [ref for _, ref in due]
    ids = [tid for tid, _ in due]
    if dry_run:
        _count(app.sessions, app.blobs, ids, result)
    else:
        for batch in _chunks(ids, BATCH):
            _purge_batch(app.sessions, app.blobs, app.now(), batch, result)
        result.blobs += sweep_orphan_blobs(app.sessions, app.blobs)
    return result


def _count(sessions: sessionmaker[Session], blobs: BlobStore, ids: list[int],
           result: RetentionResult) -> None:
    shas: set[str] = set()
    with sessions() as session:
        for batch in _chunks(ids, BATCH):
            result.counts.add(count_purge(session, batch))
            shas |= blob_candidates(session, batch)
        freed = _blobs_freed(session, shas, set(ids))
    result.blobs = sum(1 for sha in freed if blobs.exists(sha))


def _purge_batch(sessions: sessionmaker[Session], blobs: BlobStore, now: datetime,
                 ids: Sequence[int], result: RetentionResult) -> None:
    with sessions.begin() as session:
        shas = blob_candidates(session, ids)
        result.counts.add(purge_tickets(session, ids, now=now))
        for tid in ids:
            record_event(session, action="retention.purged", actor=SYSTEM_ACTOR, at=now,
                         ticket_id=tid, months=result.months,
                         cutoff=result.cutoff.isoformat())
    result.blobs += delete_unreferenced_blobs(sessions, blobs, shas)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_retention_job(app: App) -> dict[str, Any]:
    """The daily scheduler job: apply retention, report counts (no references)."""
    result = apply_retention(app, dry_run=False).as_dict()
    result["tickets"] = len(result["tickets"])
    return result
