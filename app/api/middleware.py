"""The ZAPI gate, around every request: authentication, OPTIONS, HEAD, CORS and caching headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

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

    def authenticate(request: Request) -> Response | None:
        """None when the key is right; else the 429 (throttled, key not compared) or 401."""
        source = request.client.host if request.client else "?"
        wait = throttle.retry_after(source) if throttle is not None else None
        if wait is not None:
            if metrics is not None:
                metrics.auth_throttled.inc()
            return throttled_response(request, wait)
        if keys.verify(presented_key(request)):
            return None
        if throttle is not None:
            throttle.failed(source)
        if metrics is not None:
            metrics.auth_failures.inc()
        log.warning(
            "authentication failed from %s on %s %s", source, request.method, request.url.path
        )
        return ZapiResponse(Unauthorized().body(), 401)

    @app.middleware("http")
    async def zapi_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        head = request.method == "HEAD"
        if head:  # answered like GET, without the body (reference §3.1)
            request.scope["method"] = "GET"
        if request.method == "OPTIONS":
            response: Response = ZapiResponse({}, 200, headers=CORS_PREFLIGHT_HEADERS)
        elif (
            request.url.path in public_paths
            # PBKDF2 on a wrong key takes milliseconds: off the event loop.
            or (refused := await asyncio.to_thread(authenticate, request)) is None
        ):
            response = await call_next(request)
            if head:
                body_iterator = getattr(response, "body_iterator", None)
                if body_iterator is not None:
                    async for _chunk in body_iterator:
                        pass
                response = Response(status_code=response.status_code, headers=response.headers)
        else:
            response = refused
        response.headers.update(NO_CACHE_HEADERS)
        # Reference §1.5: "*" when a key header was sent at all (even an empty one).
        sent_key = "zapi_key" in request.headers or "zapi-key" in request.headers
        response.headers["Access-Control-Allow-Origin"] = (
            "*" if sent_key else f"https://{request.headers.get('host', '')}/"
        )
        return response
