"""virtual interfaces (eth0:vip1) managed through the API

Revision ID: 0010
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "virtual_interface",
        sa.Column("name", sa.String(length=15), nullable=False),
        sa.Column("parent", sa.String(length=15), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("prefixlen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_virtual_interface")),
        sa.UniqueConstraint("ip", name=op.f("uq_virtual_interface_ip")),
    )


def downgrade() -> None:
    op.drop_table("virtual_interface")
