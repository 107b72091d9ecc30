"""Every error answered as a ZAPI envelope: service errors, unknown routes, bad requests, bugs."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.http import ZapiResponse, zapi_path
from app.errors import ZapiError

log = logging.getLogger(__name__)


def not_found(path: str) -> ZapiResponse:
    return ZapiResponse(
        {
            "description": "Request not found",
            "error": "true",
            "message": f"Request not found: {zapi_path(path)}",
        },
        404,
    )


def _endpoint(request: Request) -> str:
    return f"{request.method} {zapi_path(request.url.path)}"


async def zapi_error(_request: Request, exc: Exception) -> ZapiResponse:
    assert isinstance(exc, ZapiError)
    return ZapiResponse(exc.body(), exc.status_code)


async def http_error(request: Request, exc: Exception) -> ZapiResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405):
        return not_found(request.url.path)
    return ZapiResponse(
        {"description": "HTTP error", "error": "true", "message": str(exc.detail)},
        exc.status_code if 400 <= exc.status_code < 600 else 400,
    )


async def validation_error(request: Request, exc: Exception) -> ZapiResponse:
    """Parameters FastAPI could not parse (a path parameter of the wrong type)."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "request"
    return ZapiResponse(
        {"description": _endpoint(request), "error": "true", "message": f"Invalid {where}."},
        400,
    )


async def internal_error(request: Request, exc: Exception) -> ZapiResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return ZapiResponse(
        {
            "description": _endpoint(request),
            "error": "true",
            "message": "Internal server error; the details are in the server log.",
        },
        500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ZapiError, zapi_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
