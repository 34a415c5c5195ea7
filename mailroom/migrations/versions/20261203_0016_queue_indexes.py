"""tickets: partial indexes of the live cases for the queue's sorts and filters and the
search's walk by last activity

Revision ID: 0016
Revises: 0015

Each index holds only the cases not merged into another (``merged_into IS NULL``, what
the queue and the search list): last activity; status then last activity, creation or
the first answer's due time. With them the queue's count by status reads an index
alone, its pages are read in order without sorting (a deep page skips index entries,
not rows), and a search for common words walks cases newest activity first and stops
when it has enough. No data changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_tickets_live_updated_at": ["updated_at", "id"],
    "ix_tickets_live_status_updated_at": ["status", "updated_at", "id"],
    "ix_tickets_live_status_created_at": ["status", "created_at", "id"],
    "ix_tickets_live_status_sla_due_at": ["status", "sla_due_at", "id"],
}


def upgrade() -> None:
    live = sa.text("merged_into IS NULL")
    for name, columns in INDEXES.items():
        op.create_index(name, "tickets", columns, sqlite_where=live, postgresql_where=live)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
