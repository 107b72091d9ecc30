"""The API tests' client transport: one call into the app's event loop per request.

Starlette's TestClient runs the app in a portal thread and crosses into it about ten times per
request (two events, a memory stream and a cancel scope made through the portal, the app
started, the response start awaited, the body read chunk by chunk, the app's end awaited);
each crossing costs ~0.1 ms of CPU here.  This transport runs the whole request (body in,
every response message out) in one crossing.  What a test sees is the same: the app has
finished when the call returns (the audit entry is queued, the ETag is set), a server
exception is raised or answered with an empty 500 as `raise_server_exceptions` says, and a
HEAD answer has no body.  WebSocket requests still go through Starlette's own transport.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import anyio
import httpx
from starlette.types import Message


class OneCallTransport(httpx.BaseTransport):
    def __init__(self, starlette_transport: Any) -> None:
        # Starlette's transport (`_TestClientTransport`): its app, portal factory, options.
        self.starlette = starlette_transport

    def close(self) -> None:
        self.starlette.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        starlette = self.starlette
        if request.url.scheme not in ("http", "https"):
            response: httpx.Response = starlette.handle_request(request)
            return response
        port = request.url.port or {"http": 80, "https": 443}[request.url.scheme]
        headers = [] if "host" in request.headers else [(b"host", request.url.netloc)]
        headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.multi_items()]
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(request.url.path),
            "raw_path": request.url.raw_path.split(b"?", 1)[0],
            "root_path": starlette.root_path,
            "scheme": request.url.scheme,
            "query_string": request.url.query,
            "headers": headers,
            "client": starlette.client,
            "server": [request.url.raw_host.decode("ascii"), port],
            "extensions": {"http.response.debug": {}, "http.response.trailers": {}},
            "state": starlette.app_state.copy(),
        }
        body = request.read()
        with starlette.portal_factory() as portal:
            start, content, error = portal.call(self._run, scope, body)
        if error is not None and starlette.raise_server_exceptions:
            raise error
        if start is None:  # the app ended (or failed) without answering
            if starlette.raise_server_exceptions:
                raise AssertionError("TestClient did not receive any response.")
            return httpx.Response(500, headers=[], stream=httpx.ByteStream(b""), request=request)
        return httpx.Response(
            start["status"],
            headers=[(k.decode(), v.decode()) for k, v in start.get("headers", [])],
            stream=httpx.ByteStream(b"" if request.method == "HEAD" else content),
            request=request,
        )

    async def _run(
        self, scope: dict[str, Any], body: bytes
    ) -> tuple[Message | None, bytes, BaseException | None]:
        start: Message | None = None
        chunks: list[bytes] = []
        answered = anyio.Event()
        body_sent = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # as a client that stays until the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                assert start is None, 'Received multiple "http.response.start" messages.'
                start = message
            elif message["type"] == "http.response.body":
                assert start is not None, 'Received "http.response.body" before the start.'
                assert not answered.is_set(), 'Received "http.response.body" after the end.'
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    answered.set()

        error: BaseException | None = None
        try:
            await self.starlette.app(scope, receive, send)
        except Exception as exc:
            error = exc
        finally:
            answered.set()
        return start, b"".join(chunks), error
