"""This node in a cluster: following the database, its heartbeat, health-check leadership.

- A thread LISTENs for configuration revisions on its own connection and applies them
  (`Follower.poll`); every `interval` seconds it also polls, the fallback for notifications
  missed while the connection was down.  When the database cannot be reached the kernel is
  left as it is and the thread reconnects every `interval` seconds, then catches up.
- Every poll also writes the node's row (`cluster_node`): applied revision, heartbeat, VRRP
  role.  Peers read these rows for `GET /system/cluster`.
- Health checks run on one node only: the holder of a session-level advisory lock on a
  dedicated connection.  When that node dies its connection closes and PostgreSQL releases
  the lock; another node's next attempt (every `interval` seconds) takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import __version__
from app.db.models import ClusterNode as NodeRow
from app.reconcile.follower import Follower
from app.reconcile.revision import CHANNEL, HEALTH_LOCK

log = logging.getLogger(__name__)

STOP_CHECK = 0.2  # seconds: how long the listener waits before looking at the stop flag


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection URI (what psycopg.connect takes)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class NodeStatus:
    db_ok: bool = False
    db_error: str = ""
    health_leader: bool = False
    leader_since: float | None = None
    leader_changes: int = 0
    notifications: int = 0
    reconnects: int = 0


class ClusterNode:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        follower: Follower,
        session_factory: Callable[[], Session],
        schema_revision: Callable[[], str],
        address: str = "",
        vrrp_state: Callable[[], str] = lambda: "",
        interval: float = 1.0,
    ) -> None:
        self.name = name
        self.url = url
        self.follower = follower
        self.session_factory = session_factory
        self.schema_revision = schema_revision
        self.address = address
        self.vrrp_state = vrrp_state
        self.interval = interval
        self.status = NodeStatus()
        self.started_at = utcnow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leader_conn: Any = None
        # Called (in the listener thread) after each successful poll that found the database.
        self.on_db_ok: list[Callable[[], None]] = []

    # -- following -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen_forever, name="cluster", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._drop_leadership()

    def _connect(self, role: str) -> Any:  # psycopg.Connection (psycopg is imported lazily)
        """A session of this node's own (LISTEN, the leader's advisory lock), named in
        pg_stat_activity; over TCP a dead peer is found within seconds, not hours."""
        import psycopg

        return psycopg.connect(
            libpq_dsn(self.url),
            autocommit=True,
            connect_timeout=max(2, int(self.interval * 3)),
            application_name=f"kernlb:{self.name}:{role}",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect("listen") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._follow(conn)
            except Exception as exc:
                self._lost(exc)
                self._stop.wait(self.interval)

    def _follow(self, conn: Any) -> None:
        self.catch_up()  # whatever was missed while not listening
        due = time.monotonic() + self.interval
        while not self._stop.is_set():
            # Short waits keep stop() prompt; the database is polled only when notified or
            # every `interval` (the fallback).
            got = 0
            for notification in conn.notifies(timeout=STOP_CHECK, stop_after=1):
                got += 1
                self.follower.notified(notification.payload)
            if got:
                # Drain a burst without waiting, then apply it as one sync.
                for notification in conn.notifies(timeout=0.005):
                    got += 1
                    self.follower.notified(notification.payload)
                self.status.notifications += got
            if got or time.monotonic() >= due:
                self.catch_up()
                due = time.monotonic() + self.interval

    def catch_up(self) -> None:
        """Apply newer revisions, then report this node (raises when the database is down)."""
        self.follower.poll()
        self.report()
        if not self.status.db_ok:
            log.info("cluster: database reachable again; node %s caught up", self.name)
        self.status.db_ok = True
        self.status.db_error = ""
        for hook in self.on_db_ok:
            hook()

    def _lost(self, exc: Exception) -> None:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if self.status.db_ok or first_line != self.status.db_error:
            log.error(
                "cluster: database %s unreachable (%s); the kernel keeps its rules, writes get "
                "503 until it returns",
                redacted(self.url),
                first_line,
            )
            self.status.reconnects += 1
        self.status.db_ok = False
        self.status.db_error = first_line

    def report(self) -> None:
        """Write this node's row: applied revision, heartbeat, role."""
        now = utcnow()
        with self.session_factory() as session:
            row = session.get(NodeRow, self.name)
            if row is None:
                row = NodeRow(name=self.name, revision=0, started_at=self.started_at)
                session.add(row)
            if self.follower.applied >= 0 and row.revision != self.follower.applied:
                row.revision = self.follower.applied
                row.applied_at = now
            row.seen_at = now
            row.started_at = self.started_at
            row.address = self.address
            row.vrrp_state = self.vrrp_state()
            row.health_leader = self.status.health_leader
            row.schema_revision = self.schema_revision()
            row.version = __version__
            session.commit()

    # -- health-check leadership -----------------------------------------------------------

    async def lead_health_checks(
        self, *, start: Callable[[], None], stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Run the checker while this node holds the lock (an asyncio task, until cancelled)."""
        try:
            while True:
                held = await asyncio.to_thread(self._hold_leadership)
                if held and not self.status.health_leader:
                    self.status.health_leader = True
                    self.status.leader_since = time.time()
                    self.status.leader_changes += 1
                    log.info("cluster: node %s leads the health checks", self.name)
                    start()
                elif not held and self.status.health_leader:
                    self.status.health_leader = False
                    self.status.leader_since = None
                    log.warning("cluster: node %s no longer leads the health checks", self.name)
                    await stop()
                await asyncio.sleep(self.interval)
        finally:
            if self.status.health_leader:
                self.status.health_leader = False
                await stop()
            await asyncio.to_thread(self._drop_leadership)

    def _hold_leadership(self) -> bool:
        """True while the lock is ours; tries to take it when it is free."""
        try:
            if self._leader_conn is None:
                self._leader_conn = self._connect("health")
            if self.status.health_leader:
                self._leader_conn.execute("SELECT 1")
                return True
            row = self._leader_conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (HEALTH_LOCK,)
            ).fetchone()
            return bool(row and row[0])
        except Exception as exc:
            log.debug("cluster: health leadership check failed: %s", exc)
            self._drop_leadership()
            return False

    def _drop_leadership(self) -> None:
        conn, self._leader_conn = self._leader_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # closing the session releases the lock


def health_leader(session: Session) -> str | None:
    """The node holding the health-check lock, as PostgreSQL sees it."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    name = session.scalar(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high "
            "AND l.objid = :low AND l.objsubid = 1 "
            # Advisory locks are per database; pg_locks shows every database's.
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"high": HEALTH_LOCK >> 32, "low": HEALTH_LOCK & 0xFFFFFFFF},
    )
    if not name or not str(name).startswith("kernlb:"):
        return None
    return str(name)[len("kernlb:") :].rsplit(":", 1)[0]


def cluster_nodes(session: Session) -> list[NodeRow]:
    return list(session.scalars(select(NodeRow).order_by(NodeRow.name)))
