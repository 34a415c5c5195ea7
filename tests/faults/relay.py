"""A loopback SMTP relay for outbound fault tests: down, refusing, slow, or fine.

Unlike ``tests/integration/smtp_sink.py`` it keeps its port across ``down()``
and ``up()``, so mailroom (configured once with ``smtp://127.0.0.1:PORT``)
meets a refused connection while it is down. The port is held from the start
(:class:`tests.ports.PortReservation`), so no other process can take it while
the relay is down. ``refuse(421)`` answers every
``MAIL`` with that code. ``hold("data", n)`` makes the n-th message wait
after the relay has taken responsibility for it (recorded, the ``250`` not
yet sent); ``hold("rcpt", n)`` makes it wait before the relay accepted it.
``held`` is set when the held message arrives, so a test can kill the sender
at exactly that point.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import compat32
from typing import Any

from aiosmtpd.controller import Controller

from tests.ports import PortReservation

HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class Relayed:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message_id(self) -> str:
        value = message_from_bytes(self.data, policy=compat32)["Message-ID"] or ""
        return str(value).strip().strip("<>")


class Relay:
    """Starts down: connections to :attr:`port` are refused until :meth:`up`."""

    def __init__(self) -> None:
        self._reservation = PortReservation()
        self.port = self._reservation.port
        self.deliveries: list[Relayed] = []
        self.refused: Counter[int] = Counter()
        self.held = threading.Event()
        self._refusal: int | None = None
        self._hold: tuple[str, int] | None = None
        self._transactions = 0
        self._lock = threading.Lock()
        self._controller: _HeldPortController | None = None

    # -- states ------------------------------------------------------------------

    def up(self) -> Relay:
        if self._controller is None:
            self._controller = _HeldPortController(_Handler(self), self._reservation,
                                                   ready_timeout=10)
            self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def close(self) -> None:
        """Down for good: the port is let go."""
        self.down()
        self._reservation.close()

    def refuse(self, code: int) -> None:
        with self._lock:
            self._refusal = code

    def accept(self) -> None:
        with self._lock:
            self._refusal = None
            self._hold = None

    def hold(self, stage: str, nth: int) -> None:
        with self._lock:
            self._hold = (stage, nth)

    # -- what arrived ----------------------------------------------------------------

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(d.message_id for d in self.deliveries)

    # -- used by the handler ---------------------------------------------------------

    def start_transaction(self) -> int | None:
        """The new transaction's number, or the refusal code."""
        with self._lock:
            if self._refusal is not None:
                self.refused[self._refusal] += 1
                return None
            self._transactions += 1
            return self._transactions

    def holds(self, stage: str, number: int) -> bool:
        with self._lock:
            return self._hold == (stage, number)

    def refusal(self) -> int:
        with self._lock:
            return self._refusal or 421

    def record(self, delivery: Relayed) -> None:
        with self._lock:
            self.deliveries.append(delivery)


class _HeldPortController(Controller):
    """aiosmtpd listening on the reserved port, beside the socket that holds it."""

    def __init__(self, handler: Any, reservation: PortReservation, **kwargs: Any) -> None:
        super().__init__(handler, hostname=reservation.host, port=reservation.port, **kwargs)
        self.reservation = reservation

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.reservation.listener())


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        number = self.relay.start_transaction()
        if number is None:
            return f"{self.relay.refusal()} 4.3.2 Service not available, try again later"
        session.transaction = number
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.relay.holds("rcpt", session.transaction):
            self.relay.held.set()
            await asyncio.sleep(HOLD_SECONDS)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.relay.record(Relayed(envelope.mail_from, tuple(envelope.rcpt_tos),
                                  bytes(envelope.original_content or envelope.content)))
        if self.relay.holds("data", session.transaction):
            self.relay.held.set()  # taken responsibility for it; the 250 is still to come
            await asyncio.sleep(HOLD_SECONDS)
        return "250 2.0.0 OK: queued"
