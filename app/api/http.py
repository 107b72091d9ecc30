"""ZAPI HTTP conventions: JSON bodies in, JSON envelopes out."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from app.errors import BadRequest, UnsupportedMediaType

BASE_PATHS = ("/zapi/v3.1/zapi.cgi", "/zapi/v3/zapi.cgi")
BASE_V40 = "/zapi/v4.0/zapi.cgi"


class ZapiResponse(JSONResponse):
    """`Content-Type: application/json` exactly (no charset), keys sorted like the original."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def succeeded(description: str, message: str, **extra: Any) -> dict[str, Any]:
    """ZAPI's plain success answer: `{"description", "success": "true", "message"}` (+ extra)."""
    return {"description": description, "success": "true", "message": message, **extra}


def zapi_path(path: str) -> str:
    """The part of a URL path after the ZAPI base (what the original saw as PATH_INFO)."""
    for base in (*BASE_PATHS, BASE_V40):
        if path.startswith(base):
            return path[len(base) :] or "/"
    return path


async def json_object(request: Request) -> dict[str, Any]:
    """Parse a POST/PUT body: `application/json` (parameters allowed) holding a JSON object."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType()
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            "The request body is not valid JSON.", description=_desc(request)
        ) from None
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.", description=_desc(request))
    return value


def _desc(request: Request) -> str:
    return f"{request.method} {zapi_path(request.url.path)}"
