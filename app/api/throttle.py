"""Throttling of failed authentication, per source address (a sliding window).

After `failures` wrong keys from one address within `window` seconds, that address is answered
429 with `Retry-After` until the oldest failure leaves the window; its key is not even
compared meanwhile (no oracle, no PBKDF2 work).  Other addresses are unaffected.  Memory is
bounded: at most `max_sources` addresses are tracked (the stalest are forgotten first).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import Request, Response

from app.api.http import ZapiResponse, zapi_path

DEFAULT_FAILURES = 10
DEFAULT_WINDOW = 60.0
MAX_SOURCES = 10_000


class AuthThrottle:
    def __init__(
        self,
        *,
        failures: int = DEFAULT_FAILURES,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self.max_sources = max_sources
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, source: str) -> int | None:
        """Seconds until `source` may try again, or None when it is not throttled."""
        if self.failures <= 0:
            return None
        with self._lock:
            recent = self._pruned(source)
            if recent is None or len(recent) < self.failures:
                return None
            return max(1, math.ceil(recent[0] + self.window - self.clock()))

    def failed(self, source: str) -> None:
        with self._lock:
            recent = self._pruned(source)
            if recent is None:
                recent = self._recent[source] = deque(maxlen=max(self.failures, 1))
                while len(self._recent) > self.max_sources:
                    self._recent.popitem(last=False)
            recent.append(self.clock())
            self._recent.move_to_end(source)

    def _pruned(self, source: str) -> deque[float] | None:
        recent = self._recent.get(source)
        if recent is None:
            return None
        horizon = self.clock() - self.window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._recent[source]
            return None
        return recent


def throttled_response(request: Request, retry_after: int) -> Response:
    """429 with `Retry-After` and the ZAPI envelope."""
    return ZapiResponse(
        {
            "description": f"{request.method} {zapi_path(request.url.path)}",
            "error": "true",
            "message": (
                "Too many failed authentications from this address; "
                f"retry in {retry_after} seconds."
            ),
        },
        429,
        headers={"Retry-After": str(retry_after)},
    )
