"""participants: allowed or pending; related cases linked instead of merged

Revision ID: 0005
Revises: 0004

Every participant gets a state. Requesters stay ``allowed``; the other
participants recorded before this revision were added from the Cc and To of
inbound mail, by nobody's decision, so they become ``pending`` and receive
nothing until a practitioner allows them (``#allow`` or ``mailroom tickets
allow``). Cases that a merge would have widened are linked in
``ticket_links`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("state", sa.String(length=8), nullable=False,
                                   server_default="allowed"))
    op.execute("UPDATE participants SET state = 'pending' WHERE role <> 'requester'")
    op.create_table(
        "ticket_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("related_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message_pk", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_links_ticket_id_tickets"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["related_id"], ["tickets.id"],
                                name=op.f("fk_ticket_links_related_id_tickets"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"],
                                name=op.f("fk_ticket_links_message_pk_messages"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_links")),
        sa.UniqueConstraint("ticket_id", "related_id",
                            name=op.f("uq_ticket_links_ticket_id_related_id")),
    )
    with op.batch_alter_table("ticket_links") as batch:
        batch.create_index(batch.f("ix_ticket_links_related_id"), ["related_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ticket_links")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("state")
