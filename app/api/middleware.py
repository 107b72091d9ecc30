"""The ZAPI gate, around every request: authentication, OPTIONS, HEAD, CORS and caching headers."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.http import ZapiResponse
from app.api.throttle import AuthThrottle, throttled_response
from app.errors import Unauthorized
from app.metrics import Metrics
from app.services.keys import KeyStore

log = logging.getLogger(__name__)

NO_CACHE_HEADERS = {
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "Access-Control-Allow-Credentials": "true",
}
CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "ZAPI_KEY, Authorization, Set-cookie, Content-Type, X-Requested-With"
    ),
}


def presented_key(request: Request) -> str | None:
    # Starlette keeps header names as sent (lower-cased), underscores included: Go sends
    # "Zapi_key", zcli "ZAPI-KEY".
    return request.headers.get("zapi_key") or request.headers.get("zapi-key")


def install_gate(
    app: FastAPI,
    *,
    keys: KeyStore,
    public_paths: tuple[str, ...],
    throttle: AuthThrottle | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Every request but OPTIONS and `public_paths` needs the ZAPI key (401 otherwise); a
    source that failed too often gets 429 without its key being compared (`throttle`)."""
    app.add_middleware(
        ZapiGate, keys=keys, public_paths=public_paths, throttle=throttle, metrics=metrics
    )


class ZapiGate:
    """Pure ASGI (a `BaseHTTPMiddleware` ran every request through a task group and memory
    streams): the answer's headers are added as its start goes out, and a HEAD request is
    answered like GET with the body left out (reference §3.1)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyStore,
        public_paths: tuple[str, ...],
        throttle: AuthThrottle | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.public_paths = public_paths
        self.throttle = throttle
        self.metrics = metrics

    def authenticate(self, request: Request) -> Response | None:
        """None when the key is right; else the 429 (throttled, key not compared) or 401."""
        throttle, metrics = self.throttle, self.metrics
        source = request.client.host if request.client else "?"
        wait = throttle.retry_after(source) if throttle is not None else None
        if wait is not None:
            if metrics is not None:
                metrics.auth_throttled.inc()
            return throttled_response(request, wait)
        if self.keys.verify(presented_key(request)):
            return None
        if throttle is not None:
            throttle.failed(source)
        if metrics is not None:
            metrics.auth_failures.inc()
        log.warning(
            "authentication failed from %s on %s %s", source, request.method, request.url.path
        )
        return ZapiResponse(Unauthorized().body(), 401)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        head = scope["method"] == "HEAD"
        if head:
            scope["method"] = "GET"
        # Reference §1.5: "*" when a key header was sent at all (even an empty one).
        sent_key = "zapi_key" in request.headers or "zapi-key" in request.headers
        allow_origin = "*" if sent_key else f"https://{request.headers.get('host', '')}/"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(NO_CACHE_HEADERS)
                headers["Access-Control-Allow-Origin"] = allow_origin
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if scope["method"] == "OPTIONS":
            response: Response = ZapiResponse({}, 200, headers=CORS_PREFLIGHT_HEADERS)
        elif (
            scope["path"] in self.public_paths
            # PBKDF2 on a wrong key takes milliseconds: off the event loop.
            or (refused := await asyncio.to_thread(self.authenticate, request)) is None
        ):
            await self.app(scope, receive, send_with_headers)
            return
        else:
            response = refused
        await response(scope, receive, send_with_headers)
