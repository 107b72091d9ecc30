"""The error hierarchy: each error knows its HTTP status and renders a ZAPI envelope."""

from __future__ import annotations

from typing import Any


class ZapiError(Exception):
    """An error answered as `{"description", "error": "true", "message"}`."""

    status_code = 400

    def __init__(self, message: str, *, description: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"description": self.description, "error": "true", "message": self.message}


class BadRequest(ZapiError):
    status_code = 400


class NotFound(ZapiError):
    status_code = 404


class Gone(ZapiError):
    status_code = 410


class ServiceUnavailable(ZapiError):
    """A server-side fault (database cannot be written, conntrack unreachable): 503."""

    status_code = 503


class PreconditionFailed(ZapiError):
    """If-Match named another version of the object: 412."""

    status_code = 412


class KernelRejected(BadRequest):
    """nftables refused the batch: the transaction was rolled back, nothing changed."""


class Unauthorized(ZapiError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__("Authorization required")

    def body(self) -> dict[str, Any]:
        return {"message": "Authorization required"}


class UnsupportedMediaType(ZapiError):
    status_code = 415

    def __init__(self) -> None:
        super().__init__("Content-Type not supported")

    def body(self) -> dict[str, Any]:
        return {"error": "true", "message": "Content-Type not supported"}
