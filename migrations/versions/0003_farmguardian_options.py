"""farmguardian options beyond v3.1: probe timeout, rise/fall, cut_conns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults fill the rows of existing farms with Zevenet's behaviour.
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fg_timeout", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("fg_rise", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("fg_fall", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("fg_cut_conns", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.drop_column("fg_cut_conns")
        batch_op.drop_column("fg_fall")
        batch_op.drop_column("fg_rise")
        batch_op.drop_column("fg_timeout")
