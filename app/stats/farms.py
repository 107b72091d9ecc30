"""Connection counts of farms and backends (`/stats/farms*`, `/metrics`).

Counts come from conntrack over netlink, one dump per call, keyed by the backend's mark (its
`Backend.id`).  As in ZAPI (reference §8.1): a stopped farm counts 0 established / 0 pending,
and a farm's totals add up only its backends whose status is `up`; each backend reports its own
counts whatever its status (a draining backend still holds connections).
"""

from __future__ import annotations

import logging

from app.db import repositories as repo
from app.db.models import Backend, Farm
from app.errors import BadRequest, NotFound, ServiceUnavailable
from app.net.conntrack import ConnectionCounter, MarkCounts
from app.reconcile.uow import UnitOfWork
from app.schemas.views import BackendStats, FarmStats, FarmView

log = logging.getLogger(__name__)

DESCRIPTION = "Get farm stats"
NO_STATS_PROFILES = ("datalink",)  # the original has no stats for them (omitted / 404)
SERVICE_PROFILES = ("http", "https", "gslb")


def _backend_stats(backend: Backend, status: str, counts: MarkCounts | None) -> BackendStats:
    return BackendStats(
        id=backend.zapi_id,
        ip=backend.ip,
        port=backend.port,
        weight=backend.weight,
        priority=backend.priority,
        max_conns=backend.max_conns,
        status=status,
        established=counts.established if counts is not None else 0,
        pending=counts.pending if counts is not None else 0,
    )


def farm_stats(
    farm: Farm, counts: dict[int, MarkCounts], unreachable: frozenset[int] = frozenset()
) -> FarmStats:
    view = FarmView.of(farm, unreachable)
    status = view.status
    running = farm.running and status != "down"
    backends = tuple(
        _backend_stats(b, view.backend_status(b), counts.get(b.id) if running else None)
        for b in farm.backends
    )
    counted = [b for b in backends if b.status == "up"] if running else []
    return FarmStats(
        name=farm.name,
        profile=farm.profile,
        status=status,
        vip=farm.vip,
        vport=farm.vport,
        established=sum(b.established for b in counted),
        pending=sum(b.pending for b in counted),
        backends=backends,
    )


class FarmStatsService:
    def __init__(self, uow: UnitOfWork, counter: ConnectionCounter) -> None:
        self.uow = uow
        self.counter = counter

    def farms(self) -> list[FarmStats]:
        with self.uow.read() as session:
            farms = [f for f in repo.list_farms(session) if f.profile not in NO_STATS_PROFILES]
            busy = any(f.running and f.backends for f in farms)
            counts = self._counts() if busy else {}
            gone = self.uow.reconciler.unreachable_marks()
            return [farm_stats(f, counts, gone) for f in farms]

    def farm(self, name: str, *, path: str, service: str | None = None) -> FarmStats:
        """One farm's backends; `path` is what a 404 names (datalink farms have no stats)."""
        with self.uow.read() as session:
            farm = repo.get_farm(session, name)
            if farm is None:
                raise BadRequest(f"The farmname {name} does not exist.", description=DESCRIPTION)
            if service is not None and farm.profile not in SERVICE_PROFILES:
                raise BadRequest(
                    f"The {farm.profile} farm profile does not support services.",
                    description=DESCRIPTION,
                )
            if farm.profile in NO_STATS_PROFILES:
                raise NotFound(f"Request not found: {path}", description="Request not found")
            counts = self._counts() if farm.running and farm.backends else {}
            return farm_stats(farm, counts, self.uow.reconciler.unreachable_marks())

    def _counts(self) -> dict[int, MarkCounts]:
        """Connection counts, or a clear 503 when conntrack cannot be read over netlink
        (farms keep working: only the statistics are unavailable)."""
        try:
            return self.counter.count_by_mark()
        except Exception as exc:
            log.warning("conntrack over netlink failed: %s", exc)
            raise ServiceUnavailable(
                "Connection statistics are unavailable: conntrack cannot be read over netlink "
                f"({type(exc).__name__}: {exc}). Farms keep working.",
                description=DESCRIPTION,
            ) from None
