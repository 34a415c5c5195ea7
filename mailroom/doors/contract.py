"""The door contract: what every door hands to the inbox, and what it gets back.

A door (SMTP, IMAP, files and stdin) does step 1 of the pipeline and nothing
else (SPEC section 4). Whatever it speaks outside, inside it speaks this:

- **It hands in** an :class:`Arrival`: the raw bytes exactly as they came,
  and an :class:`Envelope` saying which door (``door``), where the door found
  the message (``ref``: an IMAP account, UIDVALIDITY and UID; a file path;
  none for SMTP), and the envelope sender and recipients when the door was
  told them (SMTP's ``MAIL FROM`` and ``RCPT TO``; the other doors do not
  know them and leave them empty: the headers are read later).
- **To an** :class:`Inbox`, by calling ``inbox.receive(arrival)``. The one
  the house runs is :class:`StoreInbox`, over
  :func:`mailroom.store.inbox.store_raw`: it commits the bytes and the
  envelope before it returns.
- **It gets back** a :class:`~mailroom.store.inbox.Stored` receipt: stored
  (a new inbox row), or ``duplicate`` (the same message was there already,
  through this door or another). Both mean the message is safe, and the door
  says so in its own words: ``250``, move the IMAP message to the processed
  folder, exit 0.
- **Or the store is unavailable**: ``receive`` raises
  :class:`~mailroom.errors.StoreUnavailable` and nothing is stored. Each door
  then gives its own temporary answer, so that the mail stays where it is and
  comes again:

  - SMTP answers ``451 4.3.0`` (:data:`mailroom.doors.smtp.STORE_UNAVAILABLE`):
    the sending server tries again;
  - IMAP leaves the message in the folder and its cursor before it: the
    poller tries again after its back-off (``mailroom tick``: at the next tick);
  - files and stdin: ``mailroom ingest -`` exits 75 (EX_TEMPFAIL): the MTA
    tries again.

  Any other error from ``receive`` is an internal one: the SMTP door answers
  ``451`` all the same (never ``250`` for mail not stored), the IMAP door
  leaves the message and backs off, ``ingest`` stops with exit status 1.

A door never parses, classifies or opens a transaction of its own, and never
decides what happens next: the worker (or ``ingest`` inline) reads the inbox.
The doors are built and wired, with the inbox they share and the wake-up of
the worker, in one place: :mod:`mailroom.runtime.doors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from mailroom.store.inbox import RawMessage, Stored, store_raw, store_raw_many
from mailroom.store.models import InboxItem

REF_LENGTH: int = InboxItem.door_ref.type.length


@dataclass(frozen=True)
class Envelope:
    """What a door knows about a message besides its bytes."""

    door: str  # the door's name: smtp, imap, file
    ref: str | None = None  # where the door found it (imap:<account>:<uidvalidity>:<uid>, a path)
    mail_from: str | None = None  # the envelope sender (SMTP's MAIL FROM; "" for a bounce)
    rcpt_to: tuple[str, ...] = field(default=())  # the envelope recipients (SMTP's RCPT TO)


@dataclass(frozen=True)
class Arrival:
    """One message as a door hands it to the inbox."""

    raw: bytes
    envelope: Envelope


class Inbox(Protocol):
    """Where a door hands its mail."""

    def receive(self, arrival: Arrival) -> Stored:
        """Commit ``arrival`` durably (or find it there already) and say which.

        Raises :class:`~mailroom.errors.StoreUnavailable` when the store cannot
        be reached: nothing was stored, and the door answers so that the mail
        is tried again.
        """
        ...


class StoreInbox:
    """The inbox table: :func:`~mailroom.store.inbox.store_raw` behind the contract.

    A reference longer than the column holds is cut to it (a deep path to a
    Maildir file): it says where a message came from, it is not a key.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def receive(self, arrival: Arrival) -> Stored:
        envelope = arrival.envelope
        ref = envelope.ref[:REF_LENGTH] if envelope.ref is not None else None
        return store_raw(self.sessions, arrival.raw, door=envelope.door, door_ref=ref,
                         mail_from=envelope.mail_from, rcpt_to=list(envelope.rcpt_to))

    def receive_many(self, arrivals: Sequence[Arrival]) -> list[Stored]:
        """``receive`` for many arrivals in one transaction (``mailroom ingest`` of a
        folder or a mailbox): all are committed before it returns, or none is."""
        return store_raw_many(self.sessions, [_raw_message(a) for a in arrivals])


def _raw_message(arrival: Arrival) -> RawMessage:
    envelope = arrival.envelope
    ref = envelope.ref[:REF_LENGTH] if envelope.ref is not None else None
    return RawMessage(arrival.raw, envelope.door, ref, envelope.mail_from,
                      list(envelope.rcpt_to))
