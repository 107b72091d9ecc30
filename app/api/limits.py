"""Hostile request bodies, refused before any route sees them.

`BodyGuard` (pure ASGI, inside authentication) reads a write request's body itself, never more
than the limit (chunked bodies too: it counts what arrives and stops), within a deadline, and
checks JSON bodies strictly: valid UTF-8, no NaN/Infinity, no duplicate keys, shallow nesting,
no absurd numbers.  Accepted bodies are replayed to the app unchanged; everything else is a
ZAPI envelope (413, 408 or 400) and the connection is closed where the body was not read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.http import BASE_V40, zapi_path

log = logging.getLogger(__name__)

DEFAULT_BODY_LIMIT = 1024 * 1024
MAX_JSON_DEPTH = 32  # ZAPI bodies are 1-2 levels deep
MAX_NUMBER_CHARS = 40  # a 64-bit integer or a float needs far fewer
V40_INVALID_JSON = "The body does not look a valid JSON"  # app/schemas/v40.py InvalidJson
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BadBody(ValueError):
    """The body is not acceptable JSON; the message says why (it is sent to the client)."""


class _NotANumber(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotANumber(name)


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise BadBody(f"A number has {len(text)} characters (at most {MAX_NUMBER_CHARS}).")
        return kind(text)

    return parse


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadBody(f"The key '{key[:64]}' appears twice in one object.")
        result[key] = value
    return result


def _depth_ok(value: Any, depth: int) -> bool:
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


def check_json(raw: bytes) -> Any:
    """Parse a request body strictly; BadBody says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("The request body is not valid JSON.") from None  # not UTF-8
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_number(int),
            parse_float=_number(float),
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise BadBody(f"The body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except _NotANumber as exc:
        try:  # name NaN/Infinity only in a body that is otherwise JSON
            json.loads(text)
        except (ValueError, RecursionError):
            raise BadBody("The request body is not valid JSON.") from None
        raise BadBody(f"{exc} is not a JSON number.") from None
    except BadBody:
        raise
    except ValueError:
        raise BadBody("The request body is not valid JSON.") from None
    if not _depth_ok(value, 1):
        raise BadBody(f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_envelope(
    send: Send, scope: Scope, status: int, message: str, *, close: bool = False
) -> None:
    envelope = {
        "description": f"{scope.get('method', '')} {zapi_path(scope.get('path', ''))}",
        "error": "true",
        "message": message,
    }
    await send_json(send, status, envelope, close=close)


async def send_json(
    send: Send, status: int, content: dict[str, Any], *, close: bool = False
) -> None:
    body = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    def __init__(self, app: ASGIApp, *, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await send_envelope(send, scope, 413, self._too_large(), close=True)
            return
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except TimeoutError:
                log.warning("request body from %s not received in time", _client(scope))
                await send_envelope(
                    send, scope, 408, "The request body was not received in time.", close=True
                )
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await send_envelope(send, scope, 413, self._too_large(), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip() and _is_json(scope):
            try:
                check_json(body)
            except BadBody as exc:
                if scope["path"].startswith(BASE_V40):
                    # ZAPI 4.0 answers every malformed body the same way (no description).
                    await send_json(send, 400, {"error": "true", "message": V40_INVALID_JSON})
                else:
                    await send_envelope(send, scope, 400, str(exc))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"The request body exceeds the limit of {self.limit} bytes."


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
