"""Start-up checks of the database: reachable, and at a schema revision this kernlb knows."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from app.cluster.node import redacted
from app.db.session import alembic_config, database_heads, migrate


class StartupError(RuntimeError):
    """Start-up cannot go on; the message names what is wrong."""


def code_head(url: str) -> str:
    from alembic.script import ScriptDirectory  # here only: Alembic costs ~85 ms to import

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    return head or ""


def database_revision(url: str) -> str:
    """The schema revision stamped in the database ("" for an empty database)."""
    heads = database_heads(url, connect_args=_connect_args(url))
    if len(heads) > 1:
        raise StartupError(f"the database {redacted(url)} has several schema heads: {heads}")
    return next(iter(heads), "")


def _connect_args(url: str) -> dict[str, object]:
    return {"connect_timeout": 5} if url.startswith("postgresql") else {}


def check_reachable(url: str) -> str | None:
    """None when the database answers, else why not (one line)."""
    try:
        database_revision(url)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return cause[0] if cause else type(exc).__name__
    return None


def migrate_checked(url: str) -> None:
    """Upgrade to this code's head; refuse a database migrated by a newer kernlb."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    current = database_revision(url)
    if current:
        try:
            script.get_revision(current)
        except Exception:
            raise StartupError(
                f"the database {redacted(url)} is at schema revision {current!r}, which this "
                f"kernlb does not know (its newest is {script.get_current_head()!r}): a newer "
                "kernlb migrated it. Upgrade this node before starting it."
            ) from None
    migrate(url)
