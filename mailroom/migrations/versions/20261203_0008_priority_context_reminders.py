"""tickets: priority and the context for the next escalation; reminders

Revision ID: 0008
Revises: 0013

``tickets.priority`` (``urgent``, ``high``, ``normal``, ``low``; every case
there is becomes ``normal``), ``tickets.escalation_context`` (what ``#context``
left for the case's next escalation), and ``reminders`` (``#remind DATE``: a
mail to a practitioner about a case on a day; the job sends what is due).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("priority", sa.String(length=8), nullable=False,
                                   server_default="normal"))
        batch.add_column(sa.Column("escalation_context", sa.Text(), nullable=True))
    op.create_table(
        "reminders",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("practitioner", sa.String(length=320), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_pk", ID, nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_reminders_ticket_id_tickets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"],
                                name=op.f("fk_reminders_message_pk_messages"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
    )
    op.create_index(op.f("ix_reminders_due_at"), "reminders", ["due_at"])
    op.create_index(op.f("ix_reminders_ticket_id"), "reminders", ["ticket_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reminders_ticket_id"), table_name="reminders")
    op.drop_index(op.f("ix_reminders_due_at"), table_name="reminders")
    op.drop_table("reminders")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("escalation_context")
        batch.drop_column("priority")
