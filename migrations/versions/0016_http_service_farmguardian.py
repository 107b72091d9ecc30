"""per-service farmguardian of http farms (issue 16): HAProxy health checks

Revision ID: 0016fg
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016fg"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = (
    ("fg_enabled", sa.Boolean(), sa.false()),
    ("fg_timecheck", sa.Integer(), "5"),
    ("fg_script", sa.String(length=1024), ""),
    ("fg_log", sa.Boolean(), sa.false()),
    ("fg_timeout", sa.Integer(), "0"),
    ("fg_rise", sa.Integer(), "1"),
    ("fg_fall", sa.Integer(), "1"),
    ("fg_cut_conns", sa.Boolean(), sa.true()),
)


def upgrade() -> None:
    with op.batch_alter_table("http_service") as batch:
        for name, kind, default in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("http_service") as batch:
        for name, _kind, _default in reversed(COLUMNS):
            batch.drop_column(name)
