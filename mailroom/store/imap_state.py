"""Where each IMAP account's poller got to, and when it last drained the folder,
kept in the database (``imap_state.updated_at``: the last successful poll)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from mailroom.store.db import unavailable_as_store_error
from mailroom.store.models import ImapState


class DatabaseImapState:
    """The IMAP door's state store (UIDVALIDITY and last UID per account)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def load(self, account: str) -> tuple[int, int] | None:
        with unavailable_as_store_error(), self.sessions() as session:
            row = session.get(ImapState, account)
            return (int(row.uidvalidity), int(row.last_uid)) if row else None

    def save(self, account: str, uidvalidity: int, last_uid: int) -> None:
        with unavailable_as_store_error(), self.sessions.begin() as session:
            row = session.get(ImapState, account)
            if row is None:
                row = ImapState(account=account, uidvalidity=uidvalidity, last_uid=last_uid)
                session.add(row)
            row.uidvalidity, row.last_uid = uidvalidity, last_uid
            row.updated_at = datetime.now(UTC)

    def polled(self, account: str) -> None:
        with unavailable_as_store_error(), self.sessions.begin() as session:
            row = session.get(ImapState, account)
            if row is not None:  # made by the first poll's save()
                row.updated_at = datetime.now(UTC)
