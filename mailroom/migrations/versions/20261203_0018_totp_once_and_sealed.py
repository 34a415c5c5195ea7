"""staff_users: totp_last_step (a code is accepted once), room for encrypted secrets

Revision ID: 0018
Revises: 0016

``totp_last_step`` starts empty: the next code each person gives is accepted,
and from then on no code of that step or an older one. ``totp_secret`` grows from
64 to 255 characters to hold a secret encrypted with the key file
(``security.totp_key_file``). The migration encrypts nothing: the console does,
at its start, with the key in its own data directory (see
``mailroom/web/totp.py`` for why not here). Downgrading removes the encrypted
secrets, which the older release cannot read: those users set up their second
factor again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.alter_column("totp_secret", existing_type=sa.String(length=64),
                           type_=sa.String(length=255), existing_nullable=True)


def downgrade() -> None:
    staff = sa.table("staff_users", sa.column("totp_secret", sa.String()))
    op.execute(staff.update().where(sa.func.length(staff.c.totp_secret) > 64)
               .values(totp_secret=None))
    with op.batch_alter_table("staff_users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(length=255),
                           type_=sa.String(length=64), existing_nullable=True)
        batch.drop_column("totp_last_step")
