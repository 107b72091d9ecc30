"""The health checker: one monitor task per farm that is running with farmguardian enabled.

It reads the configuration at start (so checks begin at once, from each backend's last known
health) and again every `poll` seconds, or at once when woken (PUT /farms/NAME/fg).  Farms that
stopped or turned farmguardian off lose their monitor; new ones get one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.health.clock import Clock, SystemClock, first_of
from app.health.monitor import FarmCheck, FarmMonitor, Sink
from app.health.probes import Prober, run_check

log = logging.getLogger(__name__)

Loader = Callable[[], Awaitable[list[FarmCheck]]]

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
    ) -> None:
        self.load = load
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

    def wake(self) -> None:
        """Re-read the configuration now (callable from any thread; a no-op when not running)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

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
                try:
                    configs = await self.load()
                except Exception:
                    log.exception("farmguardian: could not read the configuration")
                else:
                    self.apply(configs)
                await first_of(self.clock, self.poll, self._wake.wait())
        finally:
            monitors = [task for _, task in self.monitors.values()]
            self.monitors.clear()
            for task in monitors:
                task.cancel()
            await asyncio.gather(*monitors, return_exceptions=True)

    def apply(self, configs: list[FarmCheck]) -> None:
        wanted = {config.farm_id: config for config in configs}
        for farm_id in list(self.monitors):
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
