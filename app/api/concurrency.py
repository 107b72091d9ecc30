"""Optimistic concurrency for farms (kernlb extension, opt-in).

`GET /farms/NAME` answers an `ETag`: a digest of the farm's configuration and its backends'
(health and live counts excluded, so a health check never invalidates a client's copy).  A
write under `/farms/NAME` that sends `If-Match` is refused with `412` when the farm changed
since; without `If-Match` nothing changes for a client.  Writes under `/farms/NAME` pass
through one lock, so the comparison and the write are atomic against every other API write.
Successful writes answer the farm's new `ETag`, from the rows the write committed (app.db.etags)
when it committed that farm.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.http import BASE_PATHS
from app.api.limits import send_envelope
from app.db.etags import collecting, farm_etag, reading

_FARM_PATH = re.compile(r"^/farms/([^/]+)(/.*)?$")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _matches(header: str, current: str) -> bool:
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or current in tags  # strong comparison (weak W/ tags never match)


def _farm_name(scope: Scope) -> str | None:
    path: str = scope["path"]
    for base in BASE_PATHS:
        if path.startswith(base + "/"):
            match = _FARM_PATH.match(path[len(base) :])
            if match and match.group(1) != "modules":
                return match.group(1)
    return None


class FarmConcurrency:
    def __init__(self, app: ASGIApp, *, session_factory: Callable[[], Session]) -> None:
        self.app = app
        self.session_factory = session_factory
        self._writes = asyncio.Lock()

    def _etag(self, name: str) -> str | None:
        with self.session_factory() as session:
            return farm_etag(session, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _farm_name(scope) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        is_farm = scope["path"].rstrip("/").endswith(f"/farms/{name}")
        if method == "GET" and is_farm:
            with reading() as read:
                await self.app(scope, receive, self._tagging(send, name, read))
            return
        if method not in _WRITES:
            await self.app(scope, receive, send)
            return
        wanted = next((v.decode() for k, v in scope["headers"] if k == b"if-match"), None)
        async with self._writes:
            if wanted is not None:
                current = await asyncio.to_thread(self._etag, name)
                if current is not None and not _matches(wanted, current):
                    await send_envelope(
                        send,
                        scope,
                        412,
                        f"The farm {name} changed since it was read (If-Match {wanted[:80]}, "
                        f"now {current}); read it again and retry.",
                    )
                    return
            with collecting() as written:
                await self.app(scope, receive, self._tagging(send, name, written))

    def _tagging(self, send: Send, name: str, written: dict[str, str]) -> Send:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                # The rows the write committed or the GET showed, if any; else read them.
                etag = written.get(name) or await asyncio.to_thread(self._etag, name)
                if etag is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"etag"]
                    message = {**message, "headers": [*headers, (b"etag", etag.encode())]}
            await send(message)

        return tagged
