"""Server-side faults answered as ZAPI envelopes: the database cannot be written -> 503.

A write fails at flush (read-only file: before anything reached the kernel) or at commit (disk
full: the unit of work then rebuilds the kernel from the database), so the kernel is as it was
either way; the client learns that nothing changed.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError

from app.api.http import ZapiResponse, zapi_path

log = logging.getLogger(__name__)

_CANNOT_WRITE = ("readonly", "read-only", "disk is full", "database or disk is full", "disk i/o")


def database_fault_message(exc: BaseException) -> str:
    text = str(exc).lower()
    if any(marker in text for marker in _CANNOT_WRITE):
        return "The database cannot be written (read-only or full): nothing was changed."
    return "The database is unavailable: nothing was changed."


def install_fault_handlers(app: FastAPI) -> None:
    @app.exception_handler(DBAPIError)
    async def database_fault(request: Request, exc: DBAPIError) -> ZapiResponse:
        log.error("database fault on %s %s: %s", request.method, request.url.path, exc.orig)
        return ZapiResponse(
            {
                "description": f"{request.method} {zapi_path(request.url.path)}",
                "error": "true",
                "message": database_fault_message(exc),
            },
            503,
        )
