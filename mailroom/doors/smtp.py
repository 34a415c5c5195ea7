"""The SMTP door (aiosmtpd): accept mail for our domains, store it, say 250.

The handler does step 1 only. ``250`` is answered after the raw message is
committed to the inbox; a database that cannot be reached gives ``451`` so the
sending server retries later. Recipients outside the configured domains get
``550`` at RCPT time: this is not an open relay. The size limit is enforced
by aiosmtpd itself (``552``), and advertised in EHLO.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailroom.errors import StoreUnavailable

log = logging.getLogger("mailroom.smtp")

OK = "250 2.0.0 Message accepted for delivery"
RCPT_OK = "250 2.1.5 Recipient OK"
NOT_OUR_DOMAIN = "550 5.1.1 Recipient address rejected: not a helpline address (relay denied)"
BAD_ADDRESS = "553 5.1.3 Recipient address syntax is not valid"
STORE_UNAVAILABLE = "451 4.3.0 Temporary failure storing the message, please try again later"
INTERNAL_ERROR = "451 4.3.0 Temporary internal error, please try again later"
NO_RECIPIENTS = "554 5.5.1 No valid recipients"

Accept = Callable[[bytes, str | None, list[str]], None]


class HelplineHandler:
    """aiosmtpd handler: ``accept(raw, mail_from, rcpt_tos)`` stores the message."""

    def __init__(self, accept: Accept, domains: Sequence[str],
                 on_stored: Callable[[], None] | None = None) -> None:
        self.accept = accept
        self.domains = {d.lower() for d in domains}
        self.on_stored = on_stored

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
        mail_from = envelope.mail_from or ""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.accept, raw, mail_from, list(envelope.rcpt_tos))
        except StoreUnavailable as exc:
            log.warning("451 to %s: database unavailable (%s)", session.peer, exc)
            return STORE_UNAVAILABLE
        except Exception:  # noqa: BLE001 - never drop the connection with a traceback
            log.exception("451 to %s: internal error storing a message", session.peer)
            return INTERNAL_ERROR
        if self.on_stored:
            self.on_stored()
        return OK


class _Controller(Controller):
    """aiosmtpd's controller, able to listen on port 0: the port the system gave is
    read from the bound socket before the controller's first connection to itself."""

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
                 hostname: str | None = None) -> None:
        self.controller = _Controller(
            handler, hostname=host, port=port, data_size_limit=max_size,
            server_hostname=hostname, decode_data=False, ready_timeout=10.0,
            enable_SMTPUTF8=True,
        )

    def start(self) -> None:
        self.controller.start()
        log.info("SMTP listener on %s:%s", self.controller.hostname, self.controller.port)

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)
