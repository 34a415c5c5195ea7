"""outbox: every queued mail in its rendered form; the composed ``raw`` column goes

Revision ID: 0011
Revises: 0007

Rows queued before the rendered form (0004) kept their composed bytes in
``outbox.raw``. The upgrade reads each such mail back into its rendered form
(addresses with their names, subject, text and HTML parts, thread headers,
the automatic headers, our own extra headers, the date) and then drops the
column, so the sender, the data-protection export and erasure have one form
to read. A mail that cannot be read back is not guessed at: the upgrade stops
and names the row, and nothing is changed.

Downgrading adds the column back empty: the older code reads either form.
"""

from __future__ import annotations

import email
import json
from collections.abc import Sequence
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.policy import default
from email.utils import parsedate_to_datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX = sa.table("outbox", sa.column("id", sa.Integer), sa.column("raw", sa.LargeBinary),
                  sa.column("rendered", sa.JSON))

# Headers the composer writes itself (mailroom.outbox.compose); any other is an extra header.
_COMPOSED = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references",
    "reply-to", "auto-submitted", "x-loop", "x-auto-response-suppress", "precedence",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
    "sender", "return-path",
})


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(OUTBOX.c.id, OUTBOX.c.raw).where(
        OUTBOX.c.raw.is_not(None), OUTBOX.c.rendered.is_(None))).all()
    forms = []
    for row_id, raw in rows:
        try:
            forms.append((row_id, rendered_from_bytes(bytes(raw))))
        except (ValueError, TypeError, LookupError) as exc:
            raise RuntimeError(f"outbox row {row_id}: its mail cannot be read back ({exc})"
                               ) from exc
    for row_id, form in forms:
        bind.execute(sa.update(OUTBOX).where(OUTBOX.c.id == row_id).values(
            rendered=json.loads(json.dumps(form))))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("raw")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("raw", sa.LargeBinary(), nullable=True))


def rendered_from_bytes(raw: bytes) -> dict[str, Any]:
    """The rendered form of a mail our composer wrote (attachments were never kept in it)."""
    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    from_ = _addresses(msg, "From")
    if len(from_) != 1:
        raise ValueError("no single From address")
    reply_to = _addresses(msg, "Reply-To")
    date = msg["Date"]
    text, html = _bodies(msg)
    return {
        "from": from_[0], "to": _addresses(msg, "To"), "cc": _addresses(msg, "Cc"),
        "reply_to": reply_to[0] if reply_to else None, "subject": str(msg["Subject"] or ""),
        "text": text, "html": html, "message_id": _id(msg["Message-ID"]) or "",
        "in_reply_to": _id(msg["In-Reply-To"]),
        "references": [_id(part) for part in str(msg["References"] or "").split()],
        "auto_submitted": str(msg["Auto-Submitted"]) if msg["Auto-Submitted"] else None,
        "loop_token": str(msg["X-Loop"] or ""),
        "extra_headers": {name: str(value) for name, value in msg.items()
                          if name.lower() not in _COMPOSED},
        "date": parsedate_to_datetime(str(date)).isoformat() if date else "",
    }


def _addresses(msg: EmailMessage, name: str) -> list[list[str]]:
    header = msg[name]
    if header is None:
        return []
    found: tuple[HeaderAddress, ...] = header.addresses
    return [[address.addr_spec, address.display_name] for address in found]


def _id(value: object) -> str | None:
    if value is None:
        return None
    return str(value).strip().removeprefix("<").removesuffix(">") or None


def _bodies(msg: EmailMessage) -> tuple[str, str | None]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    if text is None:
        raise ValueError("no text part")
    return _content(text), _content(html) if html is not None else None


def _content(part: Message) -> str:
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # the composer wrote CRLF; the form holds lines
