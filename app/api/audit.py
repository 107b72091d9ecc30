"""The audit trail: a middleware that records every authenticated write request, and
`GET /system/audit` (kernlb extension) that pages through it, newest first."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.docs import documented
from app.api.http import ZapiResponse, zapi_path
from app.services.audit import AuditLog, AuditRecord, entry_json, now, redacted_body

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FARM_PATH = re.compile(r"^/farms/([^/]+)")
_CAPTURE = 4097  # bytes of body kept for the record (more: only the size is stored)


def farms_of(method: str, path: str, body: bytes) -> tuple[str, ...]:
    """The farms a write names: in its path, or (creating one) in its body."""
    match = _FARM_PATH.match(path)
    if match and match.group(1) != "modules":
        return (match.group(1),)
    if method == "POST" and path == "/farms" and body:
        try:
            name = json.loads(body).get("farmname")
        except (ValueError, AttributeError, RecursionError):
            return ()
        if isinstance(name, str) and name:
            return (name[:255],)
    return ()


class AuditMiddleware:
    """Placed inside authentication: refused keys are throttled and logged, not audited."""

    def __init__(self, app: ASGIApp, *, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = now()
        captured = bytearray()
        size = 0
        status = 500

        async def recording_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if len(captured) < _CAPTURE:
                    captured.extend(chunk[: _CAPTURE - len(captured)])
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            path = zapi_path(scope["path"])
            body = bytes(captured)
            client = scope.get("client")
            record = AuditRecord(
                at=at,
                source=str(client[0]) if client else "",
                method=scope["method"],
                path=scope["path"],
                body=redacted_body(body, total=size),
                status=status,
                duration_ms=(time.perf_counter() - started) * 1000,
                farms=farms_of(scope["method"], path, body),
            )
            self.audit.add(record)  # queued: the writer thread stores it


class AuditItem(BaseModel):
    id: int
    time: str
    source: str
    method: str
    path: str
    body: str
    status: int
    duration_ms: float
    farms: list[str]


class AuditPage(BaseModel):
    description: str
    params: list[AuditItem]
    page: int
    limit: int
    total: int


router = APIRouter(tags=["system"], default_response_class=ZapiResponse)


@router.get(
    "/system/audit",
    operation_id="getSystemAudit",
    **documented(AuditPage, errors=(400,)),
)
def system_audit(
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The audit log of write requests, newest first (kernlb extension)."""
    audit: AuditLog = request.app.state.audit
    total, entries = audit.page(page=page, limit=limit)
    return {
        "description": "Audit log",
        "params": [entry_json(e) for e in entries],
        "page": page,
        "limit": limit,
        "total": total,
    }
