"""The checker's side of the database: what to check, and recording what the checks found.

Health lives in `backend_health` only; nothing here writes a configuration row.  Transitions
are recorded through the unit of work, like a request: the farms they touch are re-rendered
from the same transaction and the kernel gets one batch **before** the commit, so when
`GET /farms/NAME` shows a backend down the kernel has already stopped scheduling it, and a
batch the kernel refuses leaves the health unrecorded (the next round tries again).
Transitions pending while a batch is being applied are coalesced into the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import Backend, BackendHealth, Farm
from app.domain.model import FarmSpec
from app.domain.rules import parse_vport, priority_level
from app.health.checks import CheckError, check_timeout, parse_check, uses_port
from app.health.monitor import BackendTarget, FarmCheck, Transition
from app.health.probes import MAX_REASON
from app.reconcile.uow import UnitOfWork

log = logging.getLogger(__name__)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class CheckLoader:
    """Reads the farms to check (called from a worker thread)."""

    def __init__(self, session_factory: Callable[[], Session], *, plugin_dir: Path) -> None:
        self.session_factory = session_factory
        self.plugin_dir = plugin_dir
        self._reported: set[str] = set()

    def __call__(self) -> list[FarmCheck]:
        with self.session_factory() as session:
            configs = (self.farm_check(farm) for farm in repo.guarded_farms(session))
            return [config for config in configs if config is not None]

    def farms(self, farm_ids: frozenset[int]) -> list[FarmCheck]:
        """The checks of these farms (those of them that are checked)."""
        with self.session_factory() as session:
            farms = repo.guarded_farms(session, only=farm_ids)
            configs = (self.farm_check(farm) for farm in farms)
            return [config for config in configs if config is not None]

    def farm_check(self, farm: Farm) -> FarmCheck | None:
        try:
            check = parse_check(farm.fg_script, self.plugin_dir)
        except CheckError as exc:
            self._once(f"farmguardian {farm.name}: cannot run fgscript {farm.fg_script!r}: {exc}")
            return None
        ports = parse_vport(farm.vport)
        farm_port = ports[0].first if ports else None
        targets = []
        for backend in farm.backends:
            if backend.maintenance:
                continue  # as in Zevenet: not checked, health kept as it was
            port = backend.port if backend.port is not None else farm_port
            if port is None and uses_port(check):
                self._once(
                    f"farmguardian {farm.name}: backend {backend.zapi_id} is not checked: "
                    "neither it nor the farm has a port to put in PORT"
                )
                continue
            health = backend.health.state if backend.health is not None else "up"
            targets.append(BackendTarget(backend.id, backend.zapi_id, backend.ip, port, health))
        timeout = float(farm.fg_timeout or farm.fg_timecheck)
        own = check_timeout(check)
        return FarmCheck(
            farm_id=farm.id,
            name=farm.name,
            check=check,
            interval=float(farm.fg_timecheck),
            timeout=min(timeout, own) if own is not None else timeout,
            rise=farm.fg_rise,
            fall=farm.fg_fall,
            cut_conns=farm.fg_cut_conns,
            log=farm.fg_log,
            backends=tuple(targets),
        )

    def _once(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            log.warning(message)


def in_rotation(spec: FarmSpec) -> set[int]:
    """Marks of the backends that priority and state let receive new connections."""
    level = priority_level(spec.backends)
    return {b.mark for b in spec.backends if b.status == "up" and b.priority <= level}


class HealthRecorder:
    def __init__(
        self, uow: UnitOfWork, *, wallclock: Callable[[], datetime.datetime] = utcnow
    ) -> None:
        self.uow = uow
        self.wallclock = wallclock
        self.batches = 0
        self._pending: list[tuple[FarmCheck, list[Transition], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def record(self, config: FarmCheck, transitions: list[Transition]) -> None:
        """Record a round's transitions; returns once they are in the kernel and committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((config, transitions, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await done

    async def idle(self) -> None:
        """Wait for the batch in progress (at shutdown, before the engine goes away)."""
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # rounds that end together go in one batch
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.commit, [(c, t) for c, t, _ in batch])
            except Exception as exc:
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)

    def commit(self, batch: list[tuple[FarmCheck, list[Transition]]]) -> None:
        changed_at = self.wallclock()
        recorded: list[Transition] = []
        with self.uow.write() as work:
            session = work.session
            for config, transitions in batch:
                farm = session.get(Farm, config.farm_id)
                if farm is None or not farm.fg_enabled:
                    continue  # deleted, or farmguardian was turned off (health reset) meanwhile
                before = in_rotation(repo.farm_spec(farm))
                mine = [t for t in transitions if _record(session, farm, t, changed_at)]
                if not mine:
                    continue
                recorded += mine
                if farm.fg_cut_conns and farm.running:
                    # Cut whoever these flips took out of rotation: the backend that went
                    # down, or lower-priority backends displaced by one that came back.
                    work.cut(*(before - in_rotation(repo.farm_spec(farm))))
        self.batches += 1
        for transition in recorded:
            if transition.state == "down":
                log.warning("farmguardian: %s", transition.describe())
            else:
                log.info("farmguardian: %s", transition.describe())


def _record(
    session: Session, farm: Farm, transition: Transition, changed_at: datetime.datetime
) -> bool:
    backend = session.get(Backend, transition.mark)
    if backend is None or backend.farm_id != farm.id:
        return False  # deleted while it was probed
    reason = transition.reason[:MAX_REASON]
    if backend.health is None:
        backend.health = BackendHealth(
            backend_id=backend.id, state=transition.state, changed_at=changed_at, reason=reason
        )
    else:
        backend.health.state = transition.state
        backend.health.changed_at = changed_at
        backend.health.reason = reason
    return True
