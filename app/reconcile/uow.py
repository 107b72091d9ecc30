"""One unit of work per request: one transaction, one nftables batch, committed once.

Order: validate and write in the session, flush, apply the rendered diff to the kernel,
then commit.  The farms to re-render are derived from the rows the session flushed (a
farm, or any row that names its farm), never declared by the caller: a service cannot
change the database without the kernel following.  A batch the kernel refuses rolls the
transaction back.  A commit that fails after the kernel accepted the batch makes the
reconciler rebuild the kernel from the database.  Conntrack entries are cut only after
the commit, and only after the backend left the scheduler (otherwise the client's next
segment would be dispatched to it again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, UOWTransaction

from app.db import ipds as ipds_rows
from app.db.models import (
    Backend,
    BackendHealth,
    Certificate,
    Farm,
    HttpBackend,
    HttpFarm,
    HttpFarmCertificate,
    HttpService,
    IpdsDos,
    IpdsList,
)
from app.errors import ServiceUnavailable, ZapiError
from app.net.conntrack import Conntrack
from app.reconcile.follower import UNKNOWN, Follower
from app.reconcile.reconciler import ListChange, Reconciler
from app.reconcile.revision import bump_revision, is_unavailable, lock_writers


@dataclass
class Work:
    session: Session
    touched: set[int] = field(default_factory=set)  # filled by flushes: see `farm_ids_of`
    cut_marks: set[int] = field(default_factory=set)
    # IPDS lists changed: id -> source texts added and removed, or None = read it again.
    lists: dict[int, ListChange | None] = field(default_factory=dict)
    # An http farm or a certificate changed: HAProxy's state, a revision other nodes follow.
    http: bool = False

    def touch_list(self, list_id: int) -> None:
        self.lists[list_id] = None

    def change_list(self, list_id: int, *, added: set[str], removed: set[str]) -> None:
        """Sources added to or removed from a list: the kernel gets just those elements."""
        if list_id in self.lists and self.lists[list_id] is None:
            return
        change = self.lists.setdefault(list_id, ListChange())
        assert change is not None
        change.added |= added
        change.removed |= removed

    def cut(self, *marks: int) -> None:
        self.cut_marks.update(marks)


# The rows HAProxy's configuration is made of (app.haproxy): not in the kernel's rules.
HTTP_ROWS = (HttpFarm, HttpService, HttpBackend, Certificate, HttpFarmCertificate)


def farm_ids_of(session: Session, row: object) -> Iterable[int]:
    """The farms whose rendering a changed row can alter.

    A farm itself, any row with a `farm_id` (backends, IPDS attachments, and tables added
    later that hang off a farm), a backend's health, and an IPDS list or rule (the farms
    that use it).  Other rows (settings, virtual interfaces, list sources: their elements
    go through `Work.change_list`) do not reach the farms' rules.
    """
    if isinstance(row, Farm):
        return (row.id,)
    if isinstance(row, HTTP_ROWS):
        return ()  # their `farm_id` is an http farm's: HAProxy's, not the kernel's
    farm_id = getattr(row, "farm_id", None)
    if isinstance(farm_id, int):
        return (farm_id,)
    if isinstance(row, IpdsList):
        with session.no_autoflush:
            return ipds_rows.farms_using_list(session, row.id)
    if isinstance(row, IpdsDos):
        with session.no_autoflush:
            return ipds_rows.farms_using_dos(session, row.id)
    if isinstance(row, BackendHealth):
        with session.no_autoflush:
            backend = session.get(Backend, row.backend_id)
        return (backend.farm_id,) if backend is not None else ()
    return ()


def _collect_touched(work: Work) -> Callable[[Session, UOWTransaction], None]:
    def after_flush(session: Session, _flush: UOWTransaction) -> None:
        # After the flush new rows have their ids; new/dirty/deleted still list what it wrote.
        dirty = (row for row in session.dirty if session.is_modified(row))
        for row in (*session.new, *dirty, *session.deleted):
            work.touched.update(farm_ids_of(session, row))
            work.http = work.http or isinstance(row, HTTP_ROWS)

    return after_flush


class UnitOfWork:
    def __init__(
        self,
        *,
        session_factory: Callable[[], Session],
        reconciler: Reconciler,
        conntrack: Conntrack,
        node_name: str = "",
    ) -> None:
        self.session_factory = session_factory
        self.reconciler = reconciler
        self.conntrack = conntrack
        self.node_name = node_name
        # The configuration revision the kernel reflects (shared with the cluster follower).
        self.follower = Follower(reconciler=reconciler, session_factory=session_factory)
        # Set while writes must be refused: the reason (answered with 503).
        self.refuse_writes = ""
        # Called after each commit that changed farms (e.g. the cluster's VIPs) ...
        self.after_commit: list[Callable[[], None]] = []
        # ... and with the ids of those farms and which of them farmguardian checks now (the
        # health checker re-reads just their checks).
        self.farms_committed: list[Callable[[frozenset[int], frozenset[int]], None]] = []

    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with self.session_factory() as session:
                yield session
        except SQLAlchemyError as exc:
            if is_unavailable(exc):
                raise _unavailable(exc) from exc
            raise

    @contextmanager
    def write(self, description: str = "") -> Iterator[Work]:
        """One transaction and one batch; errors without a description get the endpoint's."""
        try:
            if self.refuse_writes:
                raise ServiceUnavailable(self.refuse_writes)
            try:
                with self._write() as work:
                    yield work
            except SQLAlchemyError as exc:
                if is_unavailable(exc):
                    raise _unavailable(exc) from exc
                raise
        except ZapiError as exc:
            if not exc.description:
                exc.description = description
            raise

    @contextmanager
    def _write(self) -> Iterator[Work]:
        with self.reconciler.lock:
            session = self.session_factory()
            work = Work(session)
            collect: Any = _collect_touched(work)
            event.listen(session, "after_flush", collect)
            revision: int | None = None
            try:
                # Writers of every node sharing the database take turns (PostgreSQL advisory
                # lock; SQLite serialises writers itself), and first apply what other nodes
                # committed: the staged diff is computed against what the kernel holds.
                lock_writers(session)
                self.follower.before_write(session)
                yield work
                session.flush()
                if work.touched or work.lists or work.http:
                    # IPDS lists are not farms: followers re-sync everything for them.  An
                    # http-only change names no farm: followers sync no rule, then re-apply
                    # HAProxy (their `after_sync` hooks).
                    revision = bump_revision(
                        session,
                        node=self.node_name,
                        farms=None if work.lists else set(work.touched),
                    )
                if work.touched or work.lists:
                    self.reconciler.stage(session, work.touched, lists=work.lists)
                try:
                    session.commit()
                except Exception:
                    # In doubt (the database may be gone): the next catch-up syncs it all.
                    self.follower.applied = UNKNOWN
                    session.rollback()
                    self.reconciler.abandon()
                    raise
                self.reconciler.confirm()
                if revision is not None:
                    self.follower.committed(revision)
            except BaseException:
                session.rollback()
                raise
            finally:
                event.remove(session, "after_flush", collect)
                session.close()
            if work.cut_marks:
                self.conntrack.flush_marks(sorted(work.cut_marks))
            if work.touched:
                for hook in self.after_commit:
                    hook()
                touched = frozenset(work.touched)
                guarded = self.reconciler.guarded & touched
                for farms_hook in self.farms_committed:
                    farms_hook(touched, guarded)


def _unavailable(exc: SQLAlchemyError) -> ServiceUnavailable:
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = cause[0] if cause else type(exc).__name__
    return ServiceUnavailable(
        f"The database is unavailable ({detail}); nothing was changed. "
        "The kernel keeps forwarding with the configuration it has."
    )
