"""The reconciler's observation loops: what the kernel and the network do between requests.

- drift: every `resync_interval` seconds, compare the kernel with what was applied and
  repair it from the database;
- L2 reachability of dsr/stateless_dnat backends (neighbour table), for their farms'
  scheduling and their `undefined` status;
- load: per-backend connection counts (conntrack) for leastconn and max_conns farms.

Each loop logs and carries on when one round fails: the next round retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from app.net.conntrack import ConnectionCounter
from app.reconcile.reconciler import Reconciler

log = logging.getLogger(__name__)


async def resync_forever(reconciler: Reconciler, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(reconciler.check_drift)
        except Exception:
            log.exception("periodic reconcile failed")


# A load sample equal to the previous one doubles the wait before the next, up to this many
# intervals; a sample that differs, a changed set of marks, or a change in the number of
# conntrack entries of the namespace (read for free) samples again at the next interval.
MAX_LOAD_BACKOFF = 8


@dataclass
class LoadSchedule:
    """When the load loop reads conntrack (each read walks the kernel's whole conntrack hash:
    milliseconds of system time, whatever the filter)."""

    interval: float
    _due: float = 0.0
    _same: int = 0
    _marks: frozenset[int] | None = None
    _entries: int | None = None
    _active: dict[int, int] | None = None

    def due(self, now: float, marks: frozenset[int], entries: int | None) -> bool:
        return (
            self._active is None
            or marks != self._marks
            or entries is None
            or entries != self._entries
            or now >= self._due
        )

    def sampled(
        self, now: float, marks: frozenset[int], entries: int | None, active: dict[int, int]
    ) -> bool:
        """Record a sample; True when it differs from the previous one."""
        changed = active != self._active
        self._same = 0 if changed else min(self._same + 1, MAX_LOAD_BACKOFF.bit_length() - 1)
        self._due = now + self.interval * (2**self._same) - self.interval / 2
        self._marks, self._entries, self._active = marks, entries, active
        return changed


async def follow_load(reconciler: Reconciler, counter: ConnectionCounter, interval: float) -> None:
    """Every `interval` seconds, while some farm needs it, re-read the per-backend load and
    the L2 reachability of dsr/stateless backends."""
    schedule = LoadSchedule(interval)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        if reconciler.needs_neighbours():
            try:
                await asyncio.to_thread(reconciler.update_neighbours)
            except Exception:
                log.exception("checking neighbours failed")
        if not reconciler.needs_load():
            continue
        try:
            marks = reconciler.load_marks()
            entries = counter.table_size()
            if not schedule.due(loop.time(), marks, entries):
                continue
            # Only the backends of leastconn / max_conns farms, filtered in the kernel.
            counts = await asyncio.to_thread(counter.count_by_mark, marks)
            active = {mark: c.active for mark, c in counts.items()}
            if not schedule.sampled(loop.time(), marks, entries, active):
                continue  # what the ruleset was rendered from still holds
            changed = await asyncio.to_thread(reconciler.update_load, active)
            if changed:
                log.debug("load changed the scheduling of %d farm(s)", changed)
        except Exception:  # keep following; the next round retries
            log.exception("reading connection counts failed")


class Observers:
    """The running loops; `start` after the initial sync, `stop` at shutdown."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        resync_interval: float,
        load_interval: float,
        counter: ConnectionCounter | None,
    ) -> None:
        self.reconciler = reconciler
        self.resync_interval = resync_interval
        self.load_interval = load_interval
        self.counter = counter  # None: no conntrack to read (no kernel), no load loop
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.resync_interval > 0:
            loop = resync_forever(self.reconciler, self.resync_interval)
            self.tasks.append(asyncio.create_task(loop))
        if self.load_interval > 0 and self.counter is not None:
            loop = follow_load(self.reconciler, self.counter, self.load_interval)
            self.tasks.append(asyncio.create_task(loop))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
