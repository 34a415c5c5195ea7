"""message_targets: the accounts and items each message reported, for repeat reports

Revision ID: 0012
Revises: 0011

The table is filled for the messages already stored, from their URLs, by the
same reading the pipeline uses (:func:`mailroom.intake.accounts.targets_in`).
Messages whose content retention or erasure removed have no URLs left, and get
no rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailroom.intake.accounts import targets_in

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MESSAGES = sa.table("messages", sa.column("id", ID), sa.column("urls", sa.JSON),
                    sa.column("kind", sa.String))
TARGETS = sa.table("message_targets", sa.column("message_pk", ID),
                   sa.column("target", sa.String), sa.column("url", sa.Text))


def upgrade() -> None:
    op.create_table(
        "message_targets",
        sa.Column("message_pk", ID, nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE",
                                name=op.f("fk_message_targets_message_pk_messages")),
        sa.PrimaryKeyConstraint("message_pk", "target", name=op.f("pk_message_targets")),
    )
    op.create_index("ix_message_targets_target", "message_targets", ["target"])
    bind = op.get_bind()
    rows = bind.execute(sa.select(MESSAGES.c.id, MESSAGES.c.urls).where(
        MESSAGES.c.kind == "requester")).all()
    values = [{"message_pk": pk, "target": t.key, "url": t.url}
              for pk, urls in rows for t in targets_in(urls or [])]
    if values:
        bind.execute(sa.insert(TARGETS), values)


def downgrade() -> None:
    op.drop_index("ix_message_targets_target", table_name="message_targets")
    op.drop_table("message_targets")
