"""hash blocklist: files never forwarded in any case; the MD5 of each attachment

Revision ID: 0006
Revises: 0005

Attachments stored before this revision have no MD5 (their SHA-256 still
matches the list); the column is filled for every file parsed from now on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hash_blocklist",
        sa.Column("id", ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("origin", sa.String(length=512), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_hash_blocklist_ticket_id_tickets"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hash_blocklist")),
        sa.UniqueConstraint("sha256", name=op.f("uq_hash_blocklist_sha256")),
        sa.UniqueConstraint("md5", name=op.f("uq_hash_blocklist_md5")),
    )
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("md5", sa.String(length=32), nullable=True))
        batch.create_index(batch.f("ix_attachments_md5"), ["md5"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_index(batch.f("ix_attachments_md5"))
        batch.drop_column("md5")
    op.drop_table("hash_blocklist")
