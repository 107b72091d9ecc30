"""One farm's checks: rounds every `interval` seconds, rise/fall, timeouts, transitions.

A round probes every checked backend of the farm at once, each probe bounded by the farm's
timeout; a probe that fails or times out counts as a failed check.  A backend goes down after
`fall` consecutive failed rounds and back up after `rise` consecutive passing ones (Zevenet:
1 and 1).  The round's transitions go to the sink together, so one round costs at most one
nftables batch.  The next round starts `interval` seconds after the previous one started (or
at once when probes took longer), and at once when the farm's checks or backends change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.health.checks import Check
from app.health.clock import Clock, first_of
from app.health.probes import Prober, ProbeResult, endpoint, probe_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendTarget:
    mark: int  # the backend's database id (its conntrack mark)
    zapi_id: int
    ip: str
    port: int | None  # the port probed: the backend's, else the farm's first port
    health: str = "up"  # last known health when the configuration was read

    @property
    def address(self) -> tuple[str, int | None]:
        return (self.ip, self.port)


@dataclass(frozen=True)
class FarmCheck:
    """What the checker needs of one farm that is running with farmguardian enabled."""

    farm_id: int
    name: str
    check: Check
    interval: float
    timeout: float
    rise: int = 1
    fall: int = 1
    cut_conns: bool = False
    log: bool = False
    backends: tuple[BackendTarget, ...] = ()

    def schedule(self) -> tuple[object, ...]:
        return (self.check, self.interval, self.timeout, self.rise, self.fall)


@dataclass(frozen=True)
class Transition:
    farm_id: int
    farm: str
    mark: int
    zapi_id: int
    ip: str
    port: int | None
    state: str  # the new health: "up" | "down"
    reason: str

    def describe(self) -> str:
        # Zevenet's syslog wording, which operators grep for.
        verb = "down" if self.state == "down" else "resurrect"
        where = endpoint(self.ip, self.port)
        return f"BackEnd {where} {verb} in farm: '{self.farm}' ({self.reason})"


Sink = Callable[[FarmCheck, list[Transition]], Awaitable[None]]


@dataclass
class Tracker:
    """Health of one backend and its run of consecutive results."""

    target: BackendTarget
    state: str
    passes: int = 0
    fails: int = 0

    def observe(self, ok: bool, *, rise: int, fall: int) -> bool:
        """Count one result; True when it flips the state."""
        if ok:
            self.passes, self.fails = self.passes + 1, 0
            if self.state == "down" and self.passes >= rise:
                self.state = "up"
                return True
        else:
            self.passes, self.fails = 0, self.fails + 1
            if self.state == "up" and self.fails >= fall:
                self.state = "down"
                return True
        return False


class FarmMonitor:
    def __init__(
        self,
        config: FarmCheck,
        *,
        clock: Clock,
        prober: Prober,
        sink: Sink,
        limiter: asyncio.Semaphore | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.prober = prober
        self.sink = sink
        self.limiter = limiter
        # A backend seen for the first time starts from its last known (stored) health.
        self.trackers = {t.mark: Tracker(t, t.health) for t in config.backends}
        self._changed = asyncio.Event()

    def update(self, config: FarmCheck) -> None:
        """Take a newer configuration; a new check or a new backend is probed at once."""
        urgent = config.schedule() != self.config.schedule()
        trackers: dict[int, Tracker] = {}
        for target in config.backends:
            tracker = self.trackers.get(target.mark)
            if tracker is None:
                tracker = Tracker(target, target.health)
                urgent = True
            elif tracker.target.address != target.address:
                # The backend moved: its run of results says nothing about the new address.
                tracker = Tracker(target, tracker.state)
                urgent = True
            else:
                tracker.target = target
            trackers[target.mark] = tracker
        self.config, self.trackers = config, trackers
        if urgent:
            self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            config = self.config
            started = self.clock.now()
            try:
                await self.round(config)
            except Exception:
                log.exception("farmguardian %s: round failed", config.name)
            await self._pause(started + config.interval - self.clock.now())

    async def round(self, config: FarmCheck) -> None:
        trackers = list(self.trackers.values())
        results = await asyncio.gather(*(self._probe(config, t.target) for t in trackers))
        flips: list[tuple[Tracker, Transition]] = []
        for tracker, result in zip(trackers, results, strict=True):
            if self.trackers.get(tracker.target.mark) is not tracker:
                continue  # removed or moved while it was probed
            if config.log:
                log.info(
                    "farmguardian %s: backend %d %s: %s",
                    config.name,
                    tracker.target.zapi_id,
                    "ok" if result.ok else "failed",
                    result.reason,
                )
            if tracker.observe(result.ok, rise=config.rise, fall=config.fall):
                target = tracker.target
                transition = Transition(
                    farm_id=config.farm_id,
                    farm=config.name,
                    mark=target.mark,
                    zapi_id=target.zapi_id,
                    ip=target.ip,
                    port=target.port,
                    state=tracker.state,
                    reason=result.reason,
                )
                flips.append((tracker, transition))
        if not flips:
            return
        try:
            await self.sink(config, [transition for _, transition in flips])
        except Exception:
            # Not recorded, so not true yet: the next round flips these backends again.
            log.exception("farmguardian %s: could not record health changes", config.name)
            for tracker, transition in flips:
                tracker.state = "up" if transition.state == "down" else "down"

    async def _probe(self, config: FarmCheck, target: BackendTarget) -> ProbeResult:
        async with self.limiter if self.limiter is not None else contextlib.nullcontext():
            try:
                result = await first_of(
                    self.clock,
                    config.timeout,
                    self.prober(config.check, target.ip, target.port),
                )
            except Exception as exc:
                return ProbeResult(False, f"probe error: {exc!r}")
        if result is None:
            where = probe_target(config.check, target.ip, target.port)
            return ProbeResult(False, f"no answer from {where} within {config.timeout:g} s")
        return result

    async def _pause(self, seconds: float) -> None:
        """Wait until the next round is due, or less when the configuration changed."""
        if seconds <= 0 or self._changed.is_set():
            await asyncio.sleep(0)
            return
        await first_of(self.clock, seconds, self._changed.wait())
