"""outbox: the rendered form of a queued mail, composed when it is sent

Revision ID: 0004
Revises: 0003

Downgrading composes the rendered rows into ``raw`` first, so no queued or
sent mail loses its content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX = sa.table("outbox", sa.column("id", sa.Integer), sa.column("raw", sa.LargeBinary),
                  sa.column("rendered", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("rendered", sa.JSON(), nullable=True))


def downgrade() -> None:
    from mailroom.outbox.rendered import compose_rendered

    bind = op.get_bind()
    rows = bind.execute(sa.select(OUTBOX.c.id, OUTBOX.c.rendered).where(
        OUTBOX.c.raw.is_(None), OUTBOX.c.rendered.is_not(None))).all()
    for row_id, rendered in rows:
        form = json.loads(rendered) if isinstance(rendered, str) else rendered
        bind.execute(sa.update(OUTBOX).where(OUTBOX.c.id == row_id).values(
            raw=compose_rendered(form).as_bytes()))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("rendered")
