"""http and https farms served by HAProxy (issue 16)

Revision ID: 0016
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("pem", sa.String(length=65536), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_certificate")),
    )
    op.create_table(
        "http_farm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("vip", sa.String(length=64), nullable=False),
        sa.Column("vport", sa.Integer(), nullable=False),
        sa.Column("listener", sa.String(length=8), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("interface", sa.String(length=64), nullable=True),
        sa.Column("contimeout", sa.Integer(), nullable=False),
        sa.Column("restimeout", sa.Integer(), nullable=False),
        sa.Column("resurrectime", sa.Integer(), nullable=False),
        sa.Column("reqtimeout", sa.Integer(), nullable=False),
        sa.Column("rewritelocation", sa.String(length=32), nullable=False),
        sa.Column("httpverb", sa.String(length=32), nullable=False),
        sa.Column("error414", sa.String(length=4096), nullable=False),
        sa.Column("error500", sa.String(length=4096), nullable=False),
        sa.Column("error501", sa.String(length=4096), nullable=False),
        sa.Column("error503", sa.String(length=4096), nullable=False),
        sa.Column("ciphers", sa.String(length=32), nullable=False),
        sa.Column("cipherc", sa.String(length=1024), nullable=False),
        sa.Column("disable_sslv2", sa.Boolean(), nullable=False),
        sa.Column("disable_sslv3", sa.Boolean(), nullable=False),
        sa.Column("disable_tlsv1", sa.Boolean(), nullable=False),
        sa.Column("disable_tlsv1_1", sa.Boolean(), nullable=False),
        sa.Column("disable_tlsv1_2", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_farm")),
        sa.UniqueConstraint("name", name=op.f("uq_http_farm_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("http_farm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_http_farm_vip"), ["vip"], unique=False)

    op.create_table(
        "http_farm_certificate",
        sa.Column("farm_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cert_name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["cert_name"],
            ["certificate.name"],
            name=op.f("fk_http_farm_certificate_cert_name_certificate"),
        ),
        sa.ForeignKeyConstraint(
            ["farm_id"],
            ["http_farm.id"],
            name=op.f("fk_http_farm_certificate_farm_id_http_farm"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("farm_id", "position", name=op.f("pk_http_farm_certificate")),
    )
    with op.batch_alter_table("http_farm_certificate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_http_farm_certificate_cert_name"), ["cert_name"], unique=False
        )

    op.create_table(
        "http_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("farm_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("vhost", sa.String(length=1024), nullable=False),
        sa.Column("urlp", sa.String(length=1024), nullable=False),
        sa.Column("redirect", sa.String(length=2048), nullable=False),
        sa.Column("redirecttype", sa.String(length=16), nullable=False),
        sa.Column("persistence", sa.String(length=16), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("sessionid", sa.String(length=255), nullable=False),
        sa.Column("leastresp", sa.Boolean(), nullable=False),
        sa.Column("httpsb", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["farm_id"],
            ["http_farm.id"],
            name=op.f("fk_http_service_farm_id_http_farm"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_service")),
        sa.UniqueConstraint("farm_id", "name", name=op.f("uq_http_service_farm_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("http_service", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_http_service_farm_id"), ["farm_id"], unique=False)

    op.create_table(
        "http_backend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=True),
        sa.Column("maintenance", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["http_service.id"],
            name=op.f("fk_http_backend_service_id_http_service"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_backend")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("http_backend", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_http_backend_service_id"), ["service_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("http_backend", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_backend_service_id"))

    op.drop_table("http_backend")
    with op.batch_alter_table("http_service", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_service_farm_id"))

    op.drop_table("http_service")
    with op.batch_alter_table("http_farm_certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_farm_certificate_cert_name"))

    op.drop_table("http_farm_certificate")
    with op.batch_alter_table("http_farm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_farm_vip"))

    op.drop_table("http_farm")
    op.drop_table("certificate")
