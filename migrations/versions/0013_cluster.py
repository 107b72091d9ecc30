"""cluster: the configuration revision and the nodes sharing the database

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
        sa.Column("changed_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_revision")),
    )
    op.execute("INSERT INTO config_revision (id, revision, changed_by) VALUES (1, 0, '')")
    op.create_table(
        "cluster_node",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("vrrp_state", sa.String(length=16), nullable=False),
        sa.Column("health_leader", sa.Boolean(), nullable=False),
        sa.Column("schema_revision", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_node")),
    )


def downgrade() -> None:
    op.drop_table("cluster_node")
    op.drop_table("config_revision")
