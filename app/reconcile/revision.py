"""The configuration revision and the database-wide writer lock.

Every write that changes farms bumps the one-row `config_revision` and, on PostgreSQL,
announces it with NOTIFY (delivered at commit, so followers never see an uncommitted change).
Writers of every node serialise on a transaction-scoped advisory lock: held from the first
statement of the unit of work to its commit, so the node that holds it also knows that no other
node can move the revision under it.
"""

from __future__ import annotations

import datetime
import json

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.db.models import ConfigRevision

CHANNEL = "kernlb_config"
# Advisory lock keys: 64-bit, chosen to read "kernlb" + a role byte in hex dumps.
WRITER_LOCK = 0x6B65726E6C6201
HEALTH_LOCK = 0x6B65726E6C6202
# NOTIFY payloads must stay under 8000 bytes: beyond this many farm ids, followers sync all.
MAX_NOTIFIED_FARMS = 500


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_writers(session: Session) -> None:
    """Wait for the cluster-wide writer lock (released by the transaction's commit/rollback)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})


# Built once: building a statement costs more than running it on every write.
_CURRENT = select(ConfigRevision.revision).where(ConfigRevision.id == 1)
_BUMP = (
    update(ConfigRevision)
    .where(ConfigRevision.id == 1)
    .values(
        revision=ConfigRevision.revision + 1,
        changed_at=bindparam("changed_at"),
        changed_by=bindparam("changed_by"),
    )
    .returning(ConfigRevision.revision)
)


def current_revision(session: Session) -> int:
    value = session.connection().scalar(_CURRENT)
    return int(value or 0)


def bump_revision(session: Session, *, node: str, farms: set[int] | None) -> int:
    """The next revision, in the caller's transaction; NOTIFY followers on PostgreSQL.

    `farms`: the farms it changed (followers re-render those), None: sync everything."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    # Core, not an ORM-enabled UPDATE (no session synchronisation: nothing loads the row as
    # an object): a sixth of the cost on every write.
    revision = session.connection().scalar(_BUMP, {"changed_at": now, "changed_by": node})
    if revision is None:  # a database migrated before the row existed cannot happen; be sure
        session.add(ConfigRevision(id=1, revision=1, changed_at=now, changed_by=node))
        revision = 1
    if is_postgres(session):
        listed = sorted(farms) if farms is not None and len(farms) <= MAX_NOTIFIED_FARMS else None
        payload = json.dumps({"revision": int(revision), "node": node, "farms": listed})
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {
                "channel": CHANNEL,
                "payload": payload,
            },
        )
    return int(revision)


def is_unavailable(exc: BaseException) -> bool:
    """The shared (PostgreSQL) database cannot be reached, as opposed to a statement it
    refused.  SQLite's own faults (read-only, full) keep their own answers."""
    orig = getattr(exc, "orig", None)
    if not type(orig).__module__.startswith("psycopg"):
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
