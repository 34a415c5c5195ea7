"""tickets: country, whose emergency numbers and reporting services its requester mail gives

Revision ID: 0015
Revises: 0014

One nullable column: the cases opened before the upgrade have no country and
their mail gives the default set of ``[signposting]``, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE both ways, on SQLite too (3.35 and later drop a column in place): no
    # batch copy of tickets, so the search index's triggers on it stay as they are.
    op.add_column("tickets", sa.Column("country", sa.String(length=2), nullable=True))


def downgrade() -> None:
    op.drop_column("tickets", "country")
