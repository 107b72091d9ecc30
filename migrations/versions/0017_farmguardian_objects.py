"""named farmguardian objects (ZAPI 4.0 /monitoring/fg) and the farm's link to one; virtual
interfaces that are set down

Revision ID: 0017
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0010"
branch_labels = None
depends_on = None

MIGRATED = "This farmguardian was created automatically to migrate to ZEVENET 5.2 version or higher"


def upgrade() -> None:
    op.create_table(
        "farmguardian",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("command", sa.String(length=1024), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("log", sa.Boolean(), nullable=False),
        sa.Column("cut_conns", sa.Boolean(), nullable=False),
        sa.Column("backend_alias", sa.Boolean(), nullable=False),
        sa.Column("template", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_farmguardian")),
    )
    with op.batch_alter_table("farm") as batch:
        batch.add_column(sa.Column("fg_name", sa.String(length=255), nullable=True))
    with op.batch_alter_table("virtual_interface") as batch:
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    # Farms whose v3.1 farmguardian is on get their `_default_FARM` object, as Zevenet's
    # migration to named farmguardians did.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT name, fg_script, fg_timecheck, fg_timeout, fg_log, fg_cut_conns "
            "FROM farm WHERE fg_enabled"
        )
    ).fetchall()
    for name, script, timecheck, timeout, log, cut in rows:
        fg = f"_default_{name}"
        bind.execute(
            sa.text(
                "INSERT INTO farmguardian (name, description, command, interval, timeout, log, "
                "cut_conns, backend_alias, template) VALUES (:n, :d, :c, :i, :t, :l, :x, 0, 0)"
            ),
            {
                "n": fg,
                "d": MIGRATED,
                "c": script,
                "i": timecheck,
                "t": timeout or timecheck,
                "l": log,
                "x": cut,
            },
        )
        bind.execute(sa.text("UPDATE farm SET fg_name = :f WHERE name = :n"), {"f": fg, "n": name})


def downgrade() -> None:
    with op.batch_alter_table("virtual_interface") as batch:
        batch.drop_column("enabled")
    with op.batch_alter_table("farm") as batch:
        batch.drop_column("fg_name")
    op.drop_table("farmguardian")
