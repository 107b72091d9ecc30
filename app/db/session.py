"""Engine and session factory; Alembic migrations applied programmatically."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, pool, select, table
from sqlalchemy import column as table_column
from sqlalchemy.orm import Session, sessionmaker

import migrations

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
# Alembic's own table (its default name and column).
ALEMBIC_VERSION = table("alembic_version", table_column("version_num"))


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False}
    elif url.startswith("postgresql"):
        # A database that went away and came back leaves dead connections in the pool.
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL + synchronous=FULL: a commit is fsynced to the WAL before the API answers,
            # so an acknowledged write survives a SIGKILL and a power cut
            # (tests/kernel/test_crash_consistency.py).
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _revision_ids(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """(revision, down revisions) of one revision file, read from its source: the literals of
    its module-level `revision` and `down_revision` (None, a string or a tuple of them)."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value)
    if "revision" not in values:
        return None  # not a revision (the package's __init__.py)
    down = values.get("down_revision")
    downs = () if down is None else (down,) if isinstance(down, str) else tuple(down)
    return str(values["revision"]), downs


@functools.cache
def script_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code (read once), without
    Alembic: importing it (its DDL modules for every dialect, Mako) cost ~85 ms of every start,
    although a database at head never needs it.  tests/unit/test_migrations.py keeps this
    equal to Alembic's own reading (`ScriptDirectory.get_heads`)."""
    found = [_revision_ids(path) for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py"))]
    revisions = [ids for ids in found if ids is not None]
    lower = {down for _, downs in revisions for down in downs}
    return frozenset(revision for revision, _ in revisions) - lower


def database_heads(
    url: str,
    *,
    connect_args: dict[str, object] | None = None,
    engine: Engine | None = None,
) -> frozenset[str]:
    """The revision(s) stamped in the database's alembic_version (none for an empty one),
    read through `engine` (one on `url`) or else a throw-away engine."""
    if engine is not None:
        return _stamped(engine)
    throwaway = create_engine(url, poolclass=pool.NullPool, connect_args=connect_args or {})
    try:
        return _stamped(throwaway)
    finally:
        throwaway.dispose()


def _stamped(engine: Engine) -> frozenset[str]:
    with engine.connect() as connection:
        if not inspect(connection).has_table(ALEMBIC_VERSION.name):
            return frozenset()
        rows = connection.execute(select(ALEMBIC_VERSION.c.version_num)).scalars()
        return frozenset(str(row) for row in rows)


def at_head(url: str, *, engine: Engine | None = None) -> bool:
    """Whether the database is already at the shipped head (a cheap read of alembic_version)."""
    return database_heads(url, engine=engine) == script_heads()


def migrate(url: str, revision: str = "head", *, engine: Engine | None = None) -> None:
    """Upgrade to `revision`. A database already at head is left alone without running (or
    importing) Alembic (every start of a current server, every API test's copy of the
    template). `engine` (one on `url`, e.g. the server's own) reads the stamped revision
    without making an engine for it."""
    if revision == "head" and at_head(url, engine=engine):
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
