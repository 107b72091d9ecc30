"""Which configuration revision this node's kernel reflects, and catching up to the database.

The revision is only ever under-claimed: it is read *before* the farms it covers, so a node
that shows revision N holds at least what N describes.  Followers learn of new revisions by
NOTIFY (with the farm ids each one touched: an incremental sync) or by polling (a full sync
when the notifications in between are not all known).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.reconcile.reconciler import Reconciler
from app.reconcile.revision import current_revision, is_postgres

log = logging.getLogger(__name__)

UNKNOWN = -1


@dataclass
class FollowerStats:
    incremental_syncs: int = 0
    full_syncs: int = 0
    last_sync_at: float | None = None  # wall clock
    last_sync_seconds: float = 0.0
    last_change_seen_at: float | None = None  # when a newer revision was first noticed


class Follower:
    def __init__(
        self,
        *,
        reconciler: Reconciler,
        session_factory: Callable[[], Session],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reconciler = reconciler
        self.session_factory = session_factory
        self.clock = clock
        self.applied = UNKNOWN  # guarded by reconciler.lock
        self.latest_seen = UNKNOWN  # the newest revision known to exist
        self.stats = FollowerStats()
        self._pending: dict[int, list[int] | None] = {}  # revision -> farm ids (None: all)
        # Called after this node applied newer revisions (keepalived VIPs, the checker).
        self.after_sync: list[Callable[[], None]] = []

    # -- the unit of work's side (under reconciler.lock and the cluster writer lock) -------

    def before_write(self, session: Session) -> None:
        """Other nodes' changes first: the staged diff is computed against the kernel."""
        revision = current_revision(session)
        self._seen(revision)
        if not is_postgres(session):
            # One node, one writer (this process): its kernel already reflects the database.
            self.applied = revision
        elif revision != self.applied:
            self._full(revision)

    def committed(self, revision: int) -> None:
        self.applied = revision
        self._seen(revision)
        self._pending = {r: f for r, f in self._pending.items() if r > revision}

    # -- following ------------------------------------------------------------------------

    def notified(self, payload: str) -> None:
        """A NOTIFY from any node (ours included: harmless, its revision is applied)."""
        try:
            message = json.loads(payload)
            revision = int(message["revision"])
            farms = message.get("farms")
        except (ValueError, KeyError, TypeError):
            log.warning("cluster: ignoring malformed notification %r", payload[:200])
            return
        with self.reconciler.lock:
            self._seen(revision)
            if revision > self.applied:
                ids = [int(f) for f in farms] if isinstance(farms, list) else None
                self._pending[revision] = ids

    def full_sync(self) -> None:
        """Start-up and recovery: the whole state, and the revision read just before it."""
        with self.reconciler.lock:
            with self.session_factory() as session:
                revision = current_revision(session)
            self._seen(revision)
            self._full(revision)

    def poll(self) -> bool:
        """Catch up with the database; True when something was applied."""
        with self.reconciler.lock:
            with self.session_factory() as session:
                revision = current_revision(session)
            self._seen(revision)
            if revision == self.applied:
                return False
            wanted = range(self.applied + 1, revision + 1)
            known = self.applied != UNKNOWN and all(
                self._pending.get(r) is not None for r in wanted
            )
            started = time.perf_counter()
            if known and revision > self.applied:
                ids: set[int] = set()
                for r in wanted:
                    ids.update(self._pending[r] or ())
                self.reconciler.sync_farms(ids)
                self.stats.incremental_syncs += 1
                self._done(revision, started)
            else:
                self._full(revision)
        for hook in self.after_sync:
            hook()
        return True

    def lag(self) -> int | None:
        if self.applied == UNKNOWN or self.latest_seen == UNKNOWN:
            return None
        return max(0, self.latest_seen - self.applied)

    def _seen(self, revision: int) -> None:
        if revision > self.latest_seen:
            if self.latest_seen == self.applied:
                self.stats.last_change_seen_at = self.clock()
            self.latest_seen = revision

    def _full(self, revision: int) -> None:
        started = time.perf_counter()
        # The local kernel holds what this node applied (unless someone else committed:
        # then the reconciler lists it and syncs); a diff from it is enough.
        self.reconciler.full_sync(trust_applied=self.applied != UNKNOWN)
        self.stats.full_syncs += 1
        self._done(revision, started)

    def _done(self, revision: int, started: float) -> None:
        self.applied = revision
        self._pending = {r: f for r, f in self._pending.items() if r > revision}
        self.stats.last_sync_at = self.clock()
        self.stats.last_sync_seconds = time.perf_counter() - started
