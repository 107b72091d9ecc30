"""The zapi user: key status and rotation (reference §1.3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.schemas import requests
from app.services.users import DESCRIPTION, MASK, ZapiUserService

router = APIRouter(tags=["system"], default_response_class=ZapiResponse)


def _users(request: Request) -> ZapiUserService:
    service: ZapiUserService = request.app.state.users
    return service


UsersDep = Annotated[ZapiUserService, Depends(_users)]


def _status(enabled: bool) -> str:
    return "true" if enabled else "false"


@router.get("/system/users", operation_id="listUsers", **documented("UserListResponse", errors=()))
def list_users(users: UsersDep) -> dict[str, Any]:
    """The users of the API: root (no login in kernlb) and zapi (the key)."""
    zapi = users.status()
    return {
        "description": "Get users",
        "params": [
            {"status": "true", "user": "root"},
            {"status": _status(zapi.enabled), "user": "zapi"},
        ],
    }


@router.get(
    "/system/users/zapi",
    operation_id="getZapiUser",
    **documented("ZapiUserResponse", errors=()),
)
def get_zapi_user(users: UsersDep) -> dict[str, Any]:
    """Whether a key is set; the key itself is never shown (only a hash is stored)."""
    zapi = users.status()
    return {
        "description": "Zapi user configuration.",
        "params": {"key": MASK if zapi.enabled else "", "status": _status(zapi.enabled)},
    }


@router.post(
    "/system/users/zapi",
    operation_id="setZapiUser",
    **documented(
        "ZapiUserChangedResponse",
        body=requests.ZapiUserUpdate,
        errors=(400,),
        texts={400: "Unknown or invalid parameter"},
    ),
)
def set_zapi_user(body: BodyDep, users: UsersDep) -> dict[str, Any]:
    """Rotate the key (set one, or generate one with randomkey), or disable the zapi user."""
    change = users.change(body)
    return {
        "description": DESCRIPTION,
        "message": "Settings was changed successfully.",
        "params": change.params,
    }
