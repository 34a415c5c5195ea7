"""What a sender knows but could not write down: the database went away.

A sender claims outbox rows (status ``sending``, a claim token, a lease),
relays them, and marks each ``sent`` right after the relay's 250. When the
database vanishes in between, two facts would otherwise be lost until the
lease runs out: which rows the relay already accepted (sending them again
would duplicate them), and which claimed rows were never tried (they would
wait the whole lease). This process keeps both here, in memory, and the
next call to the sender writes them before it claims anything new.

Only a process that dies during the outage loses them; its rows then wait
for the lease as before (at-least-once, with the Message-ID fixed when
queued). Thread-safe: the inbox worker and the scheduler both send.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Pending:
    """A snapshot to write: rows accepted by the relay, and claims to give back."""

    sent: dict[tuple[int, str], datetime]  # (outbox id, claim token) -> accepted at
    release: frozenset[str]  # claim tokens whose untried rows go back to the queue

    def __bool__(self) -> bool:
        return bool(self.sent or self.release)


@dataclass
class Unsettled:
    _sent: dict[tuple[int, str], datetime] = field(default_factory=dict)
    _release: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def accepted(self, item_id: int, token: str, at: datetime) -> None:
        """The relay took this row but it could not be marked ``sent``."""
        with self._lock:
            self._sent[(item_id, token)] = at

    def give_back(self, token: str) -> None:
        """The rows of this claim still ``sending`` were not relayed: queue them again."""
        with self._lock:
            self._release.add(token)

    def pending(self) -> Pending:
        with self._lock:
            return Pending(dict(self._sent), frozenset(self._release))

    def settled(self, done: Pending) -> None:
        """Forget what has now been written."""
        with self._lock:
            for key in done.sent:
                self._sent.pop(key, None)
            self._release.difference_update(done.release)
