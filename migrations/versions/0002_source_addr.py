"""source addresses for SNAT (farm and backend)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_addr", sa.String(length=64), nullable=True))
    with op.batch_alter_table("backend", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_addr", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backend", schema=None) as batch_op:
        batch_op.drop_column("source_addr")
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.drop_column("source_addr")
