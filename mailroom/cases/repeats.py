"""The same account reported in several cases.

Each message a requester writes has its reported URLs read into targets
(:mod:`mailroom.intake.accounts`: the account, and the post or video), stored
in ``message_targets``. A case's **repeats** are the other live cases whose
messages reported one of its targets.

Who sees what:

- practitioners (the notification of a new case or follow-up, ``tickets
  show``, the report) see the other cases' references and the account's URL:
  they already work every case of the helpline, and nothing of another case's
  content is shown;
- a platform (the escalation) reads only how many professionals reported the
  account and since when: no reference, name or address of another case;
- requesters see none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.orm import Session

from mailroom.intake.accounts import targets_in
from mailroom.store.models import Message, MessageTarget, Ticket

__all__ = ["Repeat", "Reported", "record_targets", "repeated_reports", "repeats_of",
           "reported_by"]


@dataclass(frozen=True)
class Repeat:
    """A target of this case that other cases reported too."""

    target: str  # platform:kind:ident
    url: str
    references: list[str] = field(default_factory=list)  # the other cases, oldest first

    @property
    def is_account(self) -> bool:
        return self.target.split(":", 2)[1] == "account"


@dataclass(frozen=True)
class Reported:
    """How many professionals reported a target, across all cases, since when."""

    target: str
    url: str
    professionals: int
    since: datetime


def record_targets(session: Session, message_pk: int, urls: Iterable[str]) -> int:
    """Store the targets of a requester's message's URLs; how many."""
    rows = [{"message_pk": message_pk, "target": t.key, "url": t.url} for t in targets_in(urls)]
    if rows:
        session.execute(insert(MessageTarget), rows)
    return len(rows)


def _targets_of_ticket() -> Select[str]:
    return select(MessageTarget.target).join(Message, MessageTarget.message_pk == Message.id) \
        .where(Message.ticket_id == bindparam("ticket_id"))


# Built once (the notification of every requester's message asks it): building it
# cost more than running it.
_REPEATS = (
    select(MessageTarget.target, func.min(MessageTarget.url), Ticket.reference,
           func.min(Ticket.created_at))
    .join(Message, MessageTarget.message_pk == Message.id)
    .join(Ticket, Message.ticket_id == Ticket.id)
    .where(MessageTarget.target.in_(_targets_of_ticket()),
           Ticket.id != bindparam("ticket_id"), Ticket.merged_into.is_(None))
    .group_by(MessageTarget.target, Ticket.reference)
)


def repeats_of(session: Session, ticket_id: int) -> list[Repeat]:
    """This case's targets that other live cases reported, accounts first."""
    found: dict[str, tuple[str, list[tuple[datetime, str]]]] = {}
    for target, url, reference, created in session.execute(_REPEATS, {"ticket_id": ticket_id}):
        found.setdefault(target, (url, []))[1].append((created, reference or "?"))
    repeats = [Repeat(target, url, [ref for _, ref in sorted(refs)])
               for target, (url, refs) in found.items()]
    return sorted(repeats, key=lambda r: (not r.is_account, r.target))


def reported_by(session: Session, targets: Sequence[str]) -> list[Reported]:
    """For each target, the distinct professionals who reported it, and the first time."""
    if not targets:
        return []
    stmt = (
        select(MessageTarget.target, func.min(MessageTarget.url),
               func.count(func.distinct(func.lower(Message.sender))),
               func.min(Message.created_at))
        .join(Message, MessageTarget.message_pk == Message.id)
        .where(MessageTarget.target.in_(targets))
        .group_by(MessageTarget.target)
    )
    return [Reported(target, url, count, since)
            for target, url, count, since in session.execute(stmt)]


def repeated_reports(session: Session, urls: Iterable[str]) -> list[Reported]:
    """The targets of ``urls`` that more than one professional reported, accounts first."""
    keys = [t.key for t in targets_in(urls)]
    found = [r for r in reported_by(session, keys) if r.professionals > 1]
    return sorted(found, key=lambda r: (":account:" not in r.target, keys.index(r.target)))
