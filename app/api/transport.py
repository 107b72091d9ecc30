"""HTTP/1.1 connections that cannot hold the server hostage.

uvicorn times out idle keep-alive connections but not a request whose headers arrive byte by
byte (slowloris).  This protocol gives every request `header_timeout` seconds, from its first
byte (or from the previous response), to deliver its complete header block; then the
connection is closed.  Bodies are bounded by `BodyGuard`'s deadline.  Each connection is a
coroutine on the event loop: slow ones cost a file descriptor, never a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def protocol_with_header_timeout(header_timeout: float) -> type[asyncio.Protocol]:
    class HeaderTimeoutProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._seen_cycle: object = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.warning("closing a connection from %s: request headers too slow", self.client)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self.cycle is not self._seen_cycle:
                self._seen_cycle = self.cycle  # a complete header block: a request began
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

    return HeaderTimeoutProtocol


class QuietServer(uvicorn.Server):
    """uvicorn's server, waking once a second instead of ten times.

    uvicorn's main loop sleeps 0.1 s between checks for shutdown and refreshes its `Date`
    header every tenth wake-up: 36,000 wake-ups an hour of an idle daemon.  The header has a
    resolution of one second anyway; this loop wakes once a second for it, and at once when a
    signal asks the server to stop.
    """

    TICK_SECONDS = 1.0

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            # on_tick refreshes the Date header when counter % 10 == 0, as after 1 s upstream.
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), self.TICK_SECONDS)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop, event = self._loop, self._stop_requested
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
