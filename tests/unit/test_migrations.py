"""Alembic: upgrade, downgrade, upgrade again, and no drift between models and migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.db.models import Base
from app.db.session import alembic_config, at_head, database_heads, migrate, script_heads


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = create_engine(url)
    assert {"farm", "backend", "backend_health", "setting"} <= set(
        inspect(engine).get_table_names()
    )
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    command.upgrade(config, "head")
    assert "farm" in inspect(engine).get_table_names()
    engine.dispose()


def test_models_match_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_script_heads_read_without_alembic_agree_with_alembic() -> None:
    # migrate() skips Alembic (and its import) for a database at head: its reading of the
    # revision files must be Alembic's.
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script_heads() == frozenset(script.get_heads())
    assert len(script_heads()) == 1


def test_database_heads_read_without_alembic_agree_with_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert database_heads(url) == frozenset()  # no alembic_version table yet
    assert not at_head(url)
    command.upgrade(alembic_config(url), "0002")
    engine = create_engine(url)
    with engine.connect() as connection:
        alembic_reading = MigrationContext.configure(connection).get_current_heads()
    engine.dispose()
    assert database_heads(url) == frozenset(alembic_reading) == {"0002"}
    assert not at_head(url)
    migrate(url)
    assert at_head(url)
    assert database_heads(url) == script_heads()
