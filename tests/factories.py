"""Builders that read like the domain: settings, apps, messages, deliveries."""

from __future__ import annotations

import email
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailroom.app import App
from mailroom.pipeline import process_item
from mailroom.sending.sender import message_to_send, read_outgoing
from mailroom.settings import Settings, load_settings
from mailroom.store.inbox import store_raw
from mailroom.store.models import InboxItem, Message, OutboxItem, Ticket

REPO = Path(__file__).resolve().parents[1]
PRACTITIONERS = ("anna@helpline.example", "ben@helpline.example")
_counter = itertools.count(1)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_settings(tmp_path: Path, db_url: str, **sections: dict[str, Any]) -> Settings:
    """Settings for a test: its own var/ dir, the shipped platforms and templates."""
    base: dict[str, dict[str, Any]] = {
        "helpline": {"address": "helpline@helpline.example", "name": "Test Helpline"},
        "database": {"url": db_url},
        "practitioners": {"addresses": list(PRACTITIONERS)},
        "security": {"secret": "test-secret-key"},
        "smtp": {"listen": "127.0.0.1:2525"},
        "web": {"listen": "127.0.0.1:0"},
        "outbound": {"url": f"file://{tmp_path / 'var' / 'outbox-sent'}"},
        "paths": {"var_dir": str(tmp_path / "var")},
        # The digest goes out at opening time by the real clock of daemons and ticks: tests
        # that want it turn it on (tests/integration/test_digest.py).
        "digest": {"enabled": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path = tmp_path / "mailroom.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path, environ={})


class FixedClock:
    """A clock a test can move."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # a Monday, open

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)


def mail(
    *,
    sender: str = "teacher@school.example",
    name: str = "Jo Teacher",
    to: str = "helpline@helpline.example",
    cc: Iterable[str] = (),
    subject: str = "Fake account of our head teacher",
    body: str = "Someone made a fake TikTok account: https://www.tiktok.com/@fakehead\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
) -> bytes:
    """A plain-text message as a mail client would send it; ``attachments`` are
    (file name, content type, bytes)."""
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id or f'm{next(_counter)}.{id(msg)}@school.example'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    refs = list(references)
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))  # as on the wire


def deliver(app: App, raw: bytes, *, door: str = "file", mail_from: str | None = None,
            rcpt_to: Iterable[str] = ()) -> str:
    """Store and process one message; return the pipeline's outcome."""
    stored = store_raw(app.sessions, raw, door=door, mail_from=mail_from, rcpt_to=list(rcpt_to))
    outcome = process_item(app, stored.inbox_id)
    return "duplicate" if outcome == "skipped" and stored.duplicate else outcome


def tickets(app: App) -> list[Ticket]:
    with app.sessions() as session:
        return list(session.execute(
            select(Ticket).where(Ticket.merged_into.is_(None)).order_by(Ticket.id)).scalars())


def ticket_of(app: App, message_id: str) -> int | None:
    """The live ticket holding the message with this Message-ID."""
    from mailroom.store.repository import live_ticket

    with app.sessions() as session:
        tid = session.execute(
            select(Message.ticket_id).where(Message.message_id == message_id)).scalar()
        return live_ticket(session, tid) if tid else None


def inbox_rows(app: App) -> list[InboxItem]:
    with app.sessions() as session:
        return list(session.execute(select(InboxItem).order_by(InboxItem.id)).scalars())


def as_sent(app: App, item: OutboxItem) -> EmailMessage:
    """An outbox row's message as the sender would send it now (files attached)."""
    with app.sessions() as session:
        row = session.get(OutboxItem, item.id)
        assert row is not None
        outgoing = read_outgoing(session, row)
    message = message_to_send(app.blobs, outgoing)
    parsed = email.message_from_bytes(message.as_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed
