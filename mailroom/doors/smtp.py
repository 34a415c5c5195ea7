"""The SMTP door (aiosmtpd): accept mail for our domains, store it, say 250.

The handler does step 1 only, through the door contract
(:mod:`mailroom.doors.contract`): it hands the bytes, ``MAIL FROM`` and the
accepted ``RCPT TO`` to the inbox, and answers ``250`` after the inbox
committed them; a store that cannot be reached gives ``451`` so the sending
server retries later. Recipients outside the configured domains get
``550`` at RCPT time: this is not an open relay. The size limit is enforced
by aiosmtpd itself (``552``), and advertised in EHLO.

Limits against abuse, each a setting of ``[smtp]``:

- ``max_recipients`` accepted recipients per transaction; the next RCPT gets
  ``452 4.5.3`` (RFC 5321 4.5.3.1.10: the client sends the message to the
  ones accepted, then the rest in another transaction);
- ``max_connections_per_client`` connections open at once from one client
  address; the next gets ``421 4.7.0`` and is closed before the greeting.
  Counted on the event loop's own thread, so without a lock;
- ``idle_timeout_seconds``: aiosmtpd's ``timeout``, which runs from the
  start of each command. Every byte the client sends starts it again, so
  it limits silence, not the time a large message takes to arrive.

STARTTLS is offered when the listener is given a TLS context
(``[smtp] tls_certificate`` and ``tls_key``, loaded by
:func:`mailroom.runtime.doors.smtp_door`); with ``require_starttls`` every
command but EHLO, NOOP, QUIT and STARTTLS gets ``530`` until the client
switched to TLS (aiosmtpd's own rule). Mail between servers uses STARTTLS
opportunistically, so requiring it is for a listener that only a relay of our
own talks to.

The greeting and EHLO name our host and nothing else: aiosmtpd's default
greeting would tell the world which server and version it runs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailroom.doors.contract import Arrival, Inbox
from mailroom.doors.contract import Envelope as DoorEnvelope  # aiosmtpd has an Envelope
from mailroom.errors import StoreUnavailable

log = logging.getLogger("mailroom.smtp")

NAME = "smtp"  # the door's name in the envelope

GREETING = "ESMTP"  # after our host name in the 220 banner: no software, no version

OK = "250 2.0.0 Message accepted for delivery"
RCPT_OK = "250 2.1.5 Recipient OK"
NOT_OUR_DOMAIN = "550 5.1.1 Recipient address rejected: not a helpline address (relay denied)"
BAD_ADDRESS = "553 5.1.3 Recipient address syntax is not valid"
STORE_UNAVAILABLE = "451 4.3.0 Temporary failure storing the message, please try again later"
INTERNAL_ERROR = "451 4.3.0 Temporary internal error, please try again later"
NO_RECIPIENTS = "554 5.5.1 No valid recipients"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"


class HelplineHandler:
    """aiosmtpd handler: hands each message to ``inbox`` and answers what it said."""

    def __init__(self, inbox: Inbox, domains: Sequence[str], *,
                 max_recipients: int = 50) -> None:
        self.inbox = inbox
        self.domains = {d.lower() for d in domains}
        self.max_recipients = max_recipients

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        local, sep, domain = address.rpartition("@")
        if not sep or not local:
            return BAD_ADDRESS
        if domain.lower().rstrip(".") not in self.domains:
            log.info("refused relay attempt to %s from %s", address, session.peer)
            return NOT_OUR_DOMAIN
        if len(envelope.rcpt_tos) >= self.max_recipients:
            log.info("452 to %s: more than %s recipients", session.peer, self.max_recipients)
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RCPT_OK

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if not envelope.rcpt_tos:
            return NO_RECIPIENTS
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        arrival = Arrival(raw, DoorEnvelope(NAME, mail_from=envelope.mail_from or "",
                                            rcpt_to=tuple(envelope.rcpt_tos)))
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.inbox.receive, arrival)
        except StoreUnavailable as exc:
            log.warning("451 to %s: database unavailable (%s)", session.peer, exc)
            return STORE_UNAVAILABLE
        except Exception:  # noqa: BLE001 - never drop the connection with a traceback
            log.exception("451 to %s: internal error storing a message", session.peer)
            return INTERNAL_ERROR
        return OK


class _LimitedSMTP(SMTP):
    """aiosmtpd's protocol, one per connection, with the per-client connection limit
    and an idle timeout that any byte from the client starts again."""

    def __init__(self, handler: Any, *, clients: Counter[str], max_per_client: int,
                 **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.clients = clients
        self.max_per_client = max_per_client
        self.client: str | None = None  # the address counted, once accepted
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else "unknown"
        if self.clients[client] >= self.max_per_client:
            log.info("421 to %s: %s connections open already", client, self.clients[client])
            self.refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNECTIONS.encode("ascii") + b"\r\n")
            transport.close()
            return
        self.client = client
        self.clients[client] += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self.refused:
            return  # aiosmtpd never saw this connection
        if self.client is not None:
            self.clients[self.client] -= 1
            if self.clients[self.client] <= 0:
                del self.clients[self.client]
            self.client = None
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self._reset_timeout()  # the timeout measures silence, not a long DATA
        super().data_received(data)


class _Controller(Controller):
    """aiosmtpd's controller, able to listen on port 0: the port the system gave is
    read from the bound socket before the controller's first connection to itself.
    Its connections share one count of connections per client address."""

    def __init__(self, handler: Any, *, max_per_client: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.clients: Counter[str] = Counter()
        self.max_per_client = max_per_client

    def factory(self) -> SMTP:
        return _LimitedSMTP(self.handler, clients=self.clients,
                            max_per_client=self.max_per_client, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)  # an asyncio.Server once bound
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        super()._trigger_server()


class SmtpDoor:
    """The listener: an aiosmtpd controller running in its own thread.

    ``port`` 0 takes any free port; :attr:`port` is the one it got once started.
    """

    def __init__(self, handler: HelplineHandler, *, host: str, port: int, max_size: int,
                 hostname: str | None = None, max_connections_per_client: int = 10,
                 idle_timeout: float = 60.0, tls_context: ssl.SSLContext | None = None,
                 require_starttls: bool = False) -> None:
        self.controller = _Controller(
            handler, hostname=host, port=port, data_size_limit=max_size,
            server_hostname=hostname, decode_data=False, ready_timeout=10.0,
            enable_SMTPUTF8=True, ident=GREETING, timeout=idle_timeout,
            max_per_client=max_connections_per_client, tls_context=tls_context,
            require_starttls=require_starttls and tls_context is not None,
        )

    def start(self) -> None:
        self.controller.start()
        tls = self.controller.SMTP_kwargs.get("tls_context") is not None
        log.info("SMTP listener on %s:%s%s", self.controller.hostname, self.controller.port,
                 " (STARTTLS offered)" if tls else "")

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)
