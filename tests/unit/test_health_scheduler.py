"""Scheduling of farmguardian checks on a fake clock: rounds, intervals, timeouts, rise/fall,
start-up from the last known health, configuration changes, and one sink call per round."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import pytest

from app.health.checker import HealthChecker
from app.health.checks import Check, TcpCheck
from app.health.clock import FakeClock, settle
from app.health.monitor import BackendTarget, FarmCheck, FarmMonitor, Transition
from app.health.probes import ProbeResult

CHECK = TcpCheck(port="PORT")


def target(n: int, *, health: str = "up", port: int = 80) -> BackendTarget:
    return BackendTarget(mark=100 + n, zapi_id=n, ip=f"198.18.2.{n + 1}", port=port, health=health)


def farm_check(*backends: BackendTarget, **fields: object) -> FarmCheck:
    config = FarmCheck(
        farm_id=1, name="web", check=CHECK, interval=2.0, timeout=2.0, backends=backends
    )
    return replace(config, **fields)  # type: ignore[arg-type]


@dataclass
class FakeProber:
    """Answers per backend IP: True/False, or "hang" (never answers); records (time, ip)."""

    clock: FakeClock
    answers: dict[str, bool | str] = field(default_factory=dict)
    delay: float = 0.0
    calls: list[tuple[float, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def __call__(self, check: Check, host: str, port: int | None) -> ProbeResult:
        self.calls.append((self.clock.now(), host))
        answer = self.answers.get(host, True)
        try:
            if answer == "hang":
                await self.clock.sleep(10**6)
            if self.delay:
                await self.clock.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(host)
            raise
        return ProbeResult(answer is True, f"{host} {'ok' if answer is True else 'refused'}")

    def times(self, host: str) -> list[float]:
        return [t for t, h in self.calls if h == host]


@dataclass
class FakeSink:
    calls: list[tuple[float, list[Transition]]] = field(default_factory=list)
    fail: int = 0  # how many of the next calls raise
    clock: FakeClock | None = None

    async def __call__(self, config: FarmCheck, transitions: list[Transition]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("kernel refused the batch")
        self.calls.append((self.clock.now() if self.clock else 0.0, transitions))

    def flips(self) -> list[tuple[float, int, str]]:
        return [(t, tr.zapi_id, tr.state) for t, trs in self.calls for tr in trs]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prober(clock: FakeClock) -> FakeProber:
    return FakeProber(clock)


@pytest.fixture
def sink(clock: FakeClock) -> FakeSink:
    return FakeSink(clock=clock)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


@contextmanager
def monitoring(
    config: FarmCheck, clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> Iterator[FarmMonitor]:
    monitor = FarmMonitor(config, clock=clock, prober=prober, sink=sink)
    task = asyncio.get_running_loop().create_task(monitor.run())
    try:
        yield monitor
    finally:
        task.cancel()


# -- rounds and intervals ------------------------------------------------------------------


def test_first_round_is_immediate_then_one_per_interval(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        with monitoring(farm_check(target(0), target(1)), clock, prober, sink):
            await settle()
            assert prober.times("198.18.2.1") == [0.0], "checks must begin at once"
            await clock.advance(7.0)
            assert prober.times("198.18.2.1") == [0.0, 2.0, 4.0, 6.0]
            assert prober.times("198.18.2.2") == [0.0, 2.0, 4.0, 6.0]
        assert sink.calls == []

    run(scenario)


def test_interval_counts_from_the_start_of_a_round(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    prober.delay = 0.5  # each probe takes half a second

    async def scenario() -> None:
        with monitoring(farm_check(target(0)), clock, prober, sink):
            await clock.advance(6.1)
        assert prober.times("198.18.2.1") == [0.0, 2.0, 4.0, 6.0]

    run(scenario)


def test_a_probe_that_never_answers_fails_at_its_timeout(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    prober.answers["198.18.2.2"] = "hang"

    async def scenario() -> None:
        with monitoring(farm_check(target(0), target(1), timeout=1.5), clock, prober, sink):
            await clock.advance(1.4)
            assert sink.calls == []
            await clock.advance(0.2)
            assert sink.flips() == [(1.5, 1, "down")]
            (transition,) = sink.calls[0][1]
            assert transition.reason == "no answer from 198.18.2.2:80 within 1.5 s"
            assert prober.cancelled == ["198.18.2.2"], "a timed-out probe must be cancelled"

    run(scenario)


def test_rounds_never_overlap_when_probes_outlast_the_interval(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    prober.answers["198.18.2.1"] = "hang"

    async def scenario() -> None:
        with monitoring(farm_check(target(0), interval=1.0, timeout=3.0), clock, prober, sink):
            await clock.advance(9.5)
        assert prober.times("198.18.2.1") == [0.0, 3.0, 6.0, 9.0]

    run(scenario)


# -- transitions ---------------------------------------------------------------------------


def test_zevenet_default_one_failed_round_down_one_passing_round_up(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        with monitoring(farm_check(target(0), target(1)), clock, prober, sink):
            await clock.advance(1.0)
            prober.answers["198.18.2.1"] = False
            await clock.advance(2.0)  # round at t=2 fails
            assert sink.flips() == [(2.0, 0, "down")]
            await clock.advance(2.0)  # t=4 fails again: no new transition
            assert len(sink.calls) == 1
            prober.answers["198.18.2.1"] = True
            await clock.advance(2.0)  # t=6 passes
            assert sink.flips() == [(2.0, 0, "down"), (6.0, 0, "up")]
            assert sink.calls[1][1][0].reason == "198.18.2.1 ok"

    run(scenario)


def test_fall_and_rise_need_consecutive_rounds(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    ip = "198.18.2.1"
    # Rounds at t = 0, 2, 4, ...; the answer of each round, in order.
    script = [False, False, True, False, False, False, True, True, False, True, True]

    async def scenario() -> None:
        prober.answers[ip] = script[0]
        with monitoring(farm_check(target(0), fall=3, rise=2), clock, prober, sink):
            await settle()
            for answer in script[1:]:
                prober.answers[ip] = answer
                await clock.advance(2.0)
        assert prober.times(ip)[: len(script)] == [2.0 * i for i in range(len(script))]
        # Two failures then a pass: no flip.  Three failures (t=6, 8, 10): down at t=10.
        # Two passes (t=12, 14): up at t=14.  One failure, then passes: stays up.
        assert sink.flips() == [(10.0, 0, "down"), (14.0, 0, "up")]

    run(scenario)


def test_checks_start_from_the_last_known_health(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    # After a restart: b0 was down and still fails, b1 was down and passes now, b2 was up.
    prober.answers.update({"198.18.2.1": False, "198.18.2.2": True, "198.18.2.3": True})
    config = farm_check(target(0, health="down"), target(1, health="down"), target(2))

    async def scenario() -> None:
        with monitoring(config, clock, prober, sink):
            await clock.advance(0.1)
        # Nothing blindly marked up: only b1, whose check passed, came back.
        assert sink.flips() == [(0.0, 1, "up")]

    run(scenario)


def test_a_round_reports_all_its_flips_in_one_call(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        with monitoring(farm_check(target(0), target(1), target(2)), clock, prober, sink):
            await clock.advance(1.0)
            prober.answers.update({"198.18.2.1": False, "198.18.2.2": False, "198.18.2.3": False})
            await clock.advance(2.0)
        assert len(sink.calls) == 1
        assert sink.flips() == [(2.0, 0, "down"), (2.0, 1, "down"), (2.0, 2, "down")]

    run(scenario)


def test_a_flip_the_sink_refused_is_tried_again_next_round(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    prober.answers["198.18.2.1"] = False
    sink.fail = 1

    async def scenario() -> None:
        with monitoring(farm_check(target(0)), clock, prober, sink):
            await clock.advance(0.1)
            assert sink.calls == []
            await clock.advance(2.0)
        assert sink.flips() == [(2.0, 0, "down")]

    run(scenario)


# -- configuration changes -----------------------------------------------------------------


def test_a_new_backend_is_checked_at_once_and_a_removed_one_no_more(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        config = farm_check(target(0), target(1))
        with monitoring(config, clock, prober, sink) as monitor:
            await clock.advance(0.5)
            monitor.update(replace(config, backends=(target(0), target(2))))
            await settle()
            assert prober.times("198.18.2.3") == [0.5]
            await clock.advance(3.0)
            assert prober.times("198.18.2.3") == [0.5, 2.5]
            assert prober.times("198.18.2.2") == [0.0]

    run(scenario)


def test_an_unchanged_configuration_does_not_add_rounds(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        config = farm_check(target(0))
        with monitoring(config, clock, prober, sink) as monitor:
            for _ in range(5):
                await clock.advance(0.5)
                monitor.update(replace(config, backends=(target(0, health="down"),)))
            await settle()
        # The stored health of a backend already tracked is not re-read (the monitor's is newer).
        assert prober.times("198.18.2.1") == [0.0, 2.0]
        assert sink.calls == []

    run(scenario)


def test_a_new_check_or_interval_starts_a_round_at_once(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        config = farm_check(target(0), interval=10.0, timeout=10.0)
        with monitoring(config, clock, prober, sink) as monitor:
            await clock.advance(1.0)
            monitor.update(replace(config, interval=3.0))
            await clock.advance(4.0)
        assert prober.times("198.18.2.1") == [0.0, 1.0, 4.0]

    run(scenario)


def test_a_moved_backend_restarts_its_count(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    async def scenario() -> None:
        config = farm_check(target(0), fall=2)
        prober.answers["198.18.2.1"] = False
        with monitoring(config, clock, prober, sink) as monitor:
            await clock.advance(1.0)  # one failure counted for port 80
            monitor.update(replace(config, backends=(target(0, port=8080),)))
            await clock.advance(0.5)  # immediate round on 8080: first failure there
            assert sink.calls == []
            await clock.advance(2.0)
        assert sink.flips() == [(3.0, 0, "down")]

    run(scenario)


# -- the checker ---------------------------------------------------------------------------


def test_checker_follows_the_configuration(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    configs: list[FarmCheck] = [farm_check(target(0))]
    loads: list[float] = []

    async def load() -> list[FarmCheck]:
        loads.append(clock.now())
        return list(configs)

    async def scenario() -> None:
        checker = HealthChecker(load=load, sink=sink, prober=prober, clock=clock, poll=5.0)
        checker.start()
        try:
            await settle()
            assert loads == [0.0] and prober.times("198.18.2.1") == [0.0]

            # A second farm appears: found at the next poll, checked at once.
            configs.append(replace(farm_check(target(1)), farm_id=2, name="api"))
            await clock.advance(5.0)
            assert loads == [0.0, 5.0]
            assert prober.times("198.18.2.2") == [5.0]

            # A change through the API wakes the checker before the poll is due.
            configs.pop(0)
            await clock.advance(0.5)
            checker.wake()
            await settle()
            assert loads == [0.0, 5.0, 5.5]
            assert set(checker.monitors) == {2}
            await clock.advance(6.0)
            assert prober.times("198.18.2.1") == [0.0, 2.0, 4.0], "farm 1 no longer checked"
        finally:
            await checker.stop()
        assert checker.monitors == {}

    run(scenario)


def test_a_change_to_some_farms_reads_only_their_checks(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    configs = {1: farm_check(target(0)), 2: replace(farm_check(target(1)), farm_id=2, name="api")}
    full: list[float] = []
    partial: list[frozenset[int]] = []

    async def load() -> list[FarmCheck]:
        full.append(clock.now())
        return list(configs.values())

    async def load_farms(farm_ids: frozenset[int]) -> list[FarmCheck]:
        partial.append(farm_ids)
        return [configs[i] for i in sorted(farm_ids) if i in configs]

    async def scenario() -> None:
        checker = HealthChecker(
            load=load, load_farms=load_farms, sink=sink, prober=prober, clock=clock, poll=30.0
        )
        checker.start()
        try:
            await settle()
            assert full == [0.0] and set(checker.monitors) == {1, 2}
            # Farm 2 loses its checks, farm 3 (never checked) changes: only they are read.
            del configs[2]
            checker.wake([2, 3])
            await settle()
            assert (full, partial) == ([0.0], [frozenset({2, 3})])
            assert set(checker.monitors) == {1}
            configs[2] = replace(farm_check(target(2)), farm_id=2, name="api")
            checker.wake([2])
            await settle()
            assert set(checker.monitors) == {1, 2}
            assert checker.monitors[2][0].config.backends[0].ip == "198.18.2.3"
            # The writer says which changed farms are to be checked: farm 4 (not checked, not
            # to be) is not read; farm 1 (checked so far, no longer guarded) is; farm 5 (to
            # be checked) is.
            partial.clear()
            checker.wake([4], guarded=[])
            await settle()
            assert partial == []
            del configs[1]
            configs[5] = replace(farm_check(target(3)), farm_id=5, name="new")
            checker.wake([1, 4, 5], guarded=[5])
            await settle()
            assert partial == [frozenset({1, 5})]
            assert set(checker.monitors) == {2, 5}
            # A change to farmguardian settings (no farm named) and the poll read everything.
            checker.wake()
            await settle()
            await clock.advance(30.0)
            assert full == [0.0, 0.0, 30.0]
        finally:
            await checker.stop()

    run(scenario)


def test_checker_survives_a_failing_load(
    clock: FakeClock, prober: FakeProber, sink: FakeSink
) -> None:
    attempts: list[float] = []

    async def load() -> list[FarmCheck]:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise RuntimeError("database is locked")
        return [farm_check(target(0))]

    async def scenario() -> None:
        checker = HealthChecker(load=load, sink=sink, prober=prober, clock=clock, poll=1.0)
        checker.start()
        try:
            await clock.advance(1.0)
            assert attempts == [0.0, 1.0]
            assert prober.times("198.18.2.1") == [1.0]
        finally:
            await checker.stop()

    run(scenario)
