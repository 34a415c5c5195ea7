"""tickets: sla_warned_for and sla_breach_notified_for, the due times already warned about

Revision ID: 0014
Revises: 0010

Two nullable columns holding the due time (``tickets.sla_due_at``) a case's
assignee was warned of, and the one whose breach was notified, so that each
clock is warned of and notified once and a clock started again is warned of
again. Cases already overdue when the upgrade runs count as warned and notified:
the upgrade does not send a notice for every late case there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (ALTER TABLE … ADD COLUMN on both databases): the tickets table is not
    # copied, so its search triggers stay as they are.
    op.add_column("tickets", sa.Column("sla_warned_for", sa.DateTime(timezone=True),
                                       nullable=True))
    op.add_column("tickets", sa.Column("sla_breach_notified_for", sa.DateTime(timezone=True),
                                       nullable=True))
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # how the UTC columns are kept on SQLite
    tickets = sa.table("tickets", sa.column("sla_due_at", sa.DateTime(timezone=True)),
                       sa.column("sla_warned_for", sa.DateTime(timezone=True)),
                       sa.column("sla_breach_notified_for", sa.DateTime(timezone=True)))
    op.execute(tickets.update().where(tickets.c.sla_due_at.is_not(None),
                                      tickets.c.sla_due_at <= now)
               .values(sla_warned_for=tickets.c.sla_due_at,
                       sla_breach_notified_for=tickets.c.sla_due_at))


def downgrade() -> None:
    # Dropped in place (SQLite 3.35 and later): neither column is indexed nor read by the
    # search triggers, and the table is not copied.
    op.drop_column("tickets", "sla_breach_notified_for")
    op.drop_column("tickets", "sla_warned_for")
