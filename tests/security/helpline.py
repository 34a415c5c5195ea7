"""A running helpline to attack: the daemon's own parts, real SMTP, mail read as sent.

:class:`Helpline` runs :class:`mailroom.runtime.daemon.Daemon` (SMTP listener on a port
the system picks, inbox worker, scheduler) on a test database, with the file
transport: every mail the helpline sends is an ``.eml`` under ``sent_dir``,
its envelope recipients in ``X-Mailroom-Rcpt-To``. Tests send mail with
smtplib as any mail server would, and read what each person actually
received, never internal state alone.
"""

from __future__ import annotations

import email
import smtplib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mailroom.app import App
from mailroom.runtime.daemon import Daemon
from mailroom.store.models import InboxItem, OutboxItem, Ticket
from tests.factories import mail

HELPLINE = "helpline@helpline.example"
ANNA = "anna@helpline.example"
BEN = "ben@helpline.example"
SETTLE_LIMIT = 120.0  # seconds before a test gives up waiting (a hang, never a speed test)


@dataclass(frozen=True)
class Sent:
    """One mail the helpline sent, as it left."""

    path: Path
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return str(body.get_content()) if body is not None else ""

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def reply_address(self) -> str:
        return str(self.message["Reply-To"].addresses[0].addr_spec)

    def attachments(self) -> list[str]:
        return [part.get_filename() or "" for part in self.message.iter_attachments()]


class Helpline:
    """The daemon, started on ``app``; stop it with :meth:`stop`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.daemon = Daemon(app, self.stop_event)
        self.thread = threading.Thread(target=self.daemon.run, name="helpline", daemon=True)
        self.thread.start()
        self.port = self._wait_for_port()
        self.sent_dir = app.settings.sent_dir
        self._seen: set[Path] = set()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + SETTLE_LIMIT
        while self.daemon.smtp_port is None:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the daemon's SMTP listener did not start")
            time.sleep(0.02)
        return self.daemon.smtp_port

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=60)

    # --- sending --------------------------------------------------------------------

    def send(self, raw: bytes, *, mail_from: str, to: Iterable[str] = (HELPLINE,)) -> None:
        """Deliver ``raw`` as a mail server would; raise when the listener refuses it."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
            refused = client.sendmail(mail_from, list(to), raw)
        assert refused == {}, refused

    def write(self, *, sender: str, to: Iterable[str] = (HELPLINE,), **kwargs: Any) -> None:
        """A person writes: :func:`tests.factories.mail` sent to the helpline, then settled."""
        recipients = list(to)
        self.send(mail(sender=sender, to=", ".join(recipients), **kwargs), mail_from=sender,
                  to=recipients)
        self.settle()

    def reply(self, to: Sent, *, sender: str, body: str, name: str = "",
              **kwargs: Any) -> None:
        """Answer a mail we received from the helpline, as a mail client does."""
        address = to.reply_address()
        message_id = str(to.message["Message-ID"]).strip("<>")
        kwargs.setdefault("references", [message_id])
        self.write(sender=sender, to=[address], name=name, body=body,
                   subject=f"Re: {to.subject}", in_reply_to=message_id, **kwargs)

    # --- waiting ----------------------------------------------------------------------

    def settle(self) -> None:
        """Wait until every stored message is processed and all mail that is due is sent."""
        self.daemon.wake.set()
        deadline = time.monotonic() + SETTLE_LIMIT
        while not self._settled():
            if time.monotonic() > deadline:
                raise AssertionError("the helpline did not settle (inbox or outbox stuck)")
            self.daemon.wake.set()
            time.sleep(0.05)

    def _settled(self) -> bool:
        now = self.app.now()
        with self.app.sessions() as session:
            new = session.execute(select(func.count(InboxItem.id)).where(
                InboxItem.status == "new")).scalar()
            due = session.execute(select(func.count(OutboxItem.id)).where(
                OutboxItem.status.in_(("queued", "sending")),
                OutboxItem.send_after <= now)).scalar()
        return not new and not due

    # --- reading what was sent ------------------------------------------------------------

    def sent(self) -> list[Sent]:
        """Every mail sent so far, oldest first."""
        if not self.sent_dir.is_dir():
            return []
        return [read_sent(path) for path in sorted(self.sent_dir.glob("*.eml"))]

    def received(self, address: str) -> list[Sent]:
        """What ``address`` received (envelope recipient), oldest first."""
        return [s for s in self.sent() if address.lower() in s.recipients]

    def new_for(self, address: str) -> list[Sent]:
        """What ``address`` received since the last call for anyone."""
        fresh = [s for s in self.sent() if s.path not in self._seen]
        self._seen.update(s.path for s in fresh)
        return [s for s in fresh if address.lower() in s.recipients]

    def last_for(self, address: str, where: Callable[[Sent], bool] = lambda s: True) -> Sent:
        found = [s for s in self.received(address) if where(s)]
        assert found, f"{address} received nothing matching"
        return found[-1]

    def tickets(self) -> list[Ticket]:
        with self.app.sessions() as session:
            return list(session.execute(select(Ticket).order_by(Ticket.id)).scalars())


def read_sent(path: Path) -> Sent:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    envelope = str(message["X-Mailroom-Rcpt-To"] or "")
    recipients = tuple(a.strip().lower() for a in envelope.split(",") if a.strip())
    return Sent(path, recipients, message)


def everything_received(helpline: Helpline, address: str) -> str:
    """All an address received, headers and text, as one string to search."""
    return "\n".join(s.message.as_string() for s in helpline.received(address))
