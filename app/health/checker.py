"""The health checker: one monitor task per farm that is running with farmguardian enabled.

It reads the configuration at start (so checks begin at once, from each backend's last known
health) and again every `poll` seconds, or at once when woken (PUT /farms/NAME/fg).  Farms that
stopped or turned farmguardian off lose their monitor; new ones get one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from app.health.clock import Clock, SystemClock, first_of
from app.health.monitor import FarmCheck, FarmMonitor, Sink
from app.health.probes import Prober, run_check

log = logging.getLogger(__name__)

Loader = Callable[[], Awaitable[list[FarmCheck]]]
# The checks of some farms (those among them that are checked): a change to a few farms is
# read back without reading every farm again.
PartialLoader = Callable[[frozenset[int]], Awaitable[list[FarmCheck]]]

POLL_SECONDS = 1.0
# A single node learns of every change at once (the unit of work and the farmguardian
# services wake the checker): re-reading the configuration is only a safety net, and an idle
# daemon should not query the database every second.  Cluster nodes also take changes from
# other nodes, so they keep polling every POLL_SECONDS.
SINGLE_NODE_POLL_SECONDS = 30.0
MAX_PARALLEL_PROBES = 64  # plugin processes and sockets in flight at once


class HealthChecker:
    def __init__(
        self,
        *,
        load: Loader,
        sink: Sink,
        prober: Prober = run_check,
        clock: Clock | None = None,
        poll: float = POLL_SECONDS,
        on_stop: Callable[[], Awaitable[None]] | None = None,
        load_farms: PartialLoader | None = None,
    ) -> None:
        self.load = load
        self.load_farms = load_farms
        self._everything = True  # the next round re-reads every farm
        self._changed: set[int] = set()  # else: only these
        self.sink = sink
        self.prober = prober
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.poll = poll
        self.on_stop = on_stop
        self.monitors: dict[int, tuple[FarmMonitor, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._limiter: asyncio.Semaphore | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._limiter = asyncio.Semaphore(MAX_PARALLEL_PROBES)
        self._task = asyncio.create_task(self._run(), name="farmguardian")

    def wake(
        self, farm_ids: Iterable[int] | None = None, *, guarded: Iterable[int] | None = None
    ) -> None:
        """Re-read the configuration now: of these farms, or of every farm (callable from any
        thread; a no-op when not running).  `guarded`: which of the farms are to be checked
        now, when the caller knows (then the others are re-read only if checked so far)."""
        loop = self._loop
        if loop is not None and self._wake is not None and not loop.is_closed():
            ids = None if farm_ids is None else frozenset(farm_ids)
            known = None if guarded is None else frozenset(guarded)
            loop.call_soon_threadsafe(self._woken, ids, known)

    def _woken(
        self, farm_ids: frozenset[int] | None, guarded: frozenset[int] | None = None
    ) -> None:
        if farm_ids is None or self.load_farms is None:
            self._everything = True
        else:
            if guarded is not None:
                # A farm neither checked now nor to be checked: nothing to re-read.
                farm_ids = farm_ids & (self.monitors.keys() | guarded)
                if not farm_ids:
                    return
            self._changed |= farm_ids
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.on_stop is not None:
            await self.on_stop()
        self._loop = None

    async def _run(self) -> None:
        assert self._wake is not None
        try:
            while True:
                self._wake.clear()
                everything, changed = self._everything, frozenset(self._changed)
                self._everything, self._changed = False, set()
                try:
                    if everything or self.load_farms is None:
                        self.apply(await self.load())
                    elif changed:
                        self.apply_some(changed, await self.load_farms(changed))
                except Exception:
                    log.exception("farmguardian: could not read the configuration")
                    self._everything = True
                polled = not await first_of(self.clock, self.poll, self._wake.wait())
                self._everything = self._everything or polled
        finally:
            monitors = [task for _, task in self.monitors.values()]
            self.monitors.clear()
            for task in monitors:
                task.cancel()
            await asyncio.gather(*monitors, return_exceptions=True)

    def apply(self, configs: list[FarmCheck]) -> None:
        """The checks of every farm: monitors start, change and stop to match."""
        self.apply_some(frozenset(self.monitors) | {c.farm_id for c in configs}, configs)

    def apply_some(self, farm_ids: frozenset[int], configs: list[FarmCheck]) -> None:
        """The checks of these farms (`configs`: those of them that are checked)."""
        wanted = {config.farm_id: config for config in configs}
        for farm_id in sorted(farm_ids & self.monitors.keys()):
            if farm_id not in wanted:
                monitor, task = self.monitors.pop(farm_id)
                task.cancel()
                log.info("farmguardian %s: stopped", monitor.config.name)
        for farm_id, config in wanted.items():
            if farm_id in self.monitors:
                self.monitors[farm_id][0].update(config)
                continue
            monitor = FarmMonitor(
                config, clock=self.clock, prober=self.prober, sink=self.sink, limiter=self._limiter
            )
            task = asyncio.create_task(monitor.run(), name=f"farmguardian-{config.name}")
            self.monitors[farm_id] = (monitor, task)
            log.info(
                "farmguardian %s: checking %d backends every %g s",
                config.name,
                len(config.backends),
                config.interval,
            )
