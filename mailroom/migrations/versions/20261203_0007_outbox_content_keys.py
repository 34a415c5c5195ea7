"""outbox: content keys of acknowledged mail, for the circuit breaker across senders

Revision ID: 0007
Revises: 0006

Two nullable columns and their indexes; rows queued before have none, so the
breaker counts only acknowledgements queued after the upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("subject_key", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("body_key", sa.String(length=32), nullable=True))
        batch.create_index("ix_outbox_kind_subject_key_created_at",
                           ["kind", "subject_key", "created_at"])
        batch.create_index("ix_outbox_kind_body_key_created_at",
                           ["kind", "body_key", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_kind_body_key_created_at")
        batch.drop_index("ix_outbox_kind_subject_key_created_at")
        batch.drop_column("body_key")
        batch.drop_column("subject_key")
