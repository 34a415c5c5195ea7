"""inbox: the raw bytes move to their own table, so a status change never copies them

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


FK = "fk_inbox_raw_inbox_id_inbox"


def upgrade() -> None:
    # The foreign key comes last: on SQLite, dropping inbox.raw rebuilds the inbox
    # table, and a cascading key already in place would empty inbox_raw with it.
    op.create_table(
        "inbox_raw",
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_inbox_raw")),
    )
    op.execute("INSERT INTO inbox_raw (inbox_id, raw) SELECT id, raw FROM inbox "
               "WHERE raw IS NOT NULL")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("raw")
    with op.batch_alter_table("inbox_raw") as batch:
        batch.create_foreign_key(FK, "inbox", ["inbox_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("inbox_raw") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE inbox SET raw = (SELECT raw FROM inbox_raw "
               "WHERE inbox_raw.inbox_id = inbox.id)")
    op.drop_table("inbox_raw")
