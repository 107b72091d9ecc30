"""IPDS: lists (blacklists/whitelists) with their sources, DoS rules, farm attachments

Revision ID: 0014
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ipds_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ipds_list")),
        sa.UniqueConstraint("name", name=op.f("uq_ipds_list_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ipds_dos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("limit_burst", sa.Integer(), nullable=False),
        sa.Column("limit_conns", sa.Integer(), nullable=False),
        sa.Column("meter_size", sa.Integer(), nullable=False),
        sa.Column("overflow_limit", sa.Integer(), nullable=False),
        sa.Column("overflow_burst", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ipds_dos")),
        sa.UniqueConstraint("name", name=op.f("uq_ipds_dos_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "ipds_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("zapi_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["ipds_list.id"],
            name=op.f("fk_ipds_source_list_id_ipds_list"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ipds_source")),
        sa.UniqueConstraint("list_id", "zapi_id", name=op.f("uq_ipds_source_list_id")),
        sa.UniqueConstraint("list_id", "source", name="uq_ipds_source_list_id_source"),
    )
    op.create_table(
        "ipds_farm_list",
        sa.Column("farm_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["farm_id"],
            ["farm.id"],
            name=op.f("fk_ipds_farm_list_farm_id_farm"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["ipds_list.id"],
            name=op.f("fk_ipds_farm_list_list_id_ipds_list"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("farm_id", "list_id", name=op.f("pk_ipds_farm_list")),
    )
    op.create_table(
        "ipds_farm_dos",
        sa.Column("farm_id", sa.Integer(), nullable=False),
        sa.Column("dos_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["farm_id"], ["farm.id"], name=op.f("fk_ipds_farm_dos_farm_id_farm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dos_id"],
            ["ipds_dos.id"],
            name=op.f("fk_ipds_farm_dos_dos_id_ipds_dos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("farm_id", "dos_id", name=op.f("pk_ipds_farm_dos")),
    )


def downgrade() -> None:
    op.drop_table("ipds_farm_dos")
    op.drop_table("ipds_farm_list")
    op.drop_table("ipds_source")
    op.drop_table("ipds_dos")
    op.drop_table("ipds_list")
