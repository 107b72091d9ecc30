"""Time for the scheduler: the event loop's clock in production, a fake one in tests.

Every wait of the checker (round intervals, probe timeouts, configuration polling) goes through
`Clock.sleep`, so a test can run hours of scheduling in milliseconds with `FakeClock.advance`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """Time moves only when a test calls `advance`; sleepers wake in order of their deadline."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline and letting tasks run."""
        target = self._now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
                await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 200) -> None:
    """Let every runnable task run until all of them wait (on the clock or on I/O)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def first_of(clock: Clock, seconds: float, other: Awaitable[T]) -> T | None:
    """`other`'s result if it finishes within `seconds` of the clock, else None (it is cancelled
    and allowed to clean up before this returns)."""
    work = asyncio.ensure_future(other)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, timer):
            if not task.done():
                task.cancel()
        await asyncio.gather(work, timer, return_exceptions=True)
    if work.cancelled():
        return None
    return work.result()
