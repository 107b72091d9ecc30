"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:12:17.060724
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "farm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("vip", sa.String(length=64), nullable=False),
        sa.Column("vport", sa.String(length=1024), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("nattype", sa.String(length=32), nullable=False),
        sa.Column("persistence", sa.String(length=32), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("fg_enabled", sa.Boolean(), nullable=False),
        sa.Column("fg_timecheck", sa.Integer(), nullable=False),
        sa.Column("fg_script", sa.String(length=1024), nullable=False),
        sa.Column("fg_log", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farm")),
        sa.UniqueConstraint("name", name=op.f("uq_farm_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_farm_vip"), ["vip"], unique=False)

    op.create_table(
        "setting",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_setting")),
    )
    op.create_table(
        "backend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("farm_id", sa.Integer(), nullable=False),
        sa.Column("zapi_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("max_conns", sa.Integer(), nullable=False),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.Column("maintenance_mode", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["farm_id"], ["farm.id"], name=op.f("fk_backend_farm_id_farm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backend")),
        sa.UniqueConstraint("farm_id", "zapi_id", name=op.f("uq_backend_farm_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("backend", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backend_farm_id"), ["farm_id"], unique=False)

    op.create_table(
        "backend_health",
        sa.Column("backend_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["backend_id"],
            ["backend.id"],
            name=op.f("fk_backend_health_backend_id_backend"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backend_id", name=op.f("pk_backend_health")),
    )


def downgrade() -> None:
    op.drop_table("backend_health")
    with op.batch_alter_table("backend", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backend_farm_id"))

    op.drop_table("backend")
    op.drop_table("setting")
    with op.batch_alter_table("farm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_farm_vip"))

    op.drop_table("farm")
