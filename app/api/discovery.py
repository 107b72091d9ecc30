"""Discovery: `GET /system/info` and `GET /ids` (zapi40-l4.md §2), under the 3.1 and 4.0 bases.

zcli calls both before anything else: without `/ids` answering a JSON `params` it counts the load
balancer as unreachable and registers no command; `/system/info`'s `edition` ("community")
hides the Enterprise-only commands.
"""

from __future__ import annotations

import platform
import socket
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from app import __version__
from app.api.deps import FarmsDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.api.v40.base import new_router
from app.services.fg_objects import FgObjectService
from app.services.interfaces import InterfaceService

SUPPORTED_ZAPI_VERSIONS = ["3", "3.1", "4.0"]

router31 = APIRouter(tags=["system"], default_response_class=ZapiResponse)


class SystemInfoParams(BaseModel):
    appliance_version: str
    edition: str = Field(examples=["community"])
    hostname: str
    kernel_version: str
    language: str
    last_zapi_version: str
    platform: str
    supported_zapi_versions: list[str]
    system_date: str
    user: str
    zevenet_version: str


class SystemInfoResponse(BaseModel):
    description: str
    params: SystemInfoParams


class IdsResponse(BaseModel):
    description: str
    params: dict[str, Any] = Field(
        description="the object ids as a tree whose leaves (and empty branches) are null"
    )


def _fg_objects(request: Request) -> FgObjectService:
    service: FgObjectService = request.app.state.fg_objects
    return service


def _interfaces(request: Request) -> InterfaceService:
    service: InterfaceService = request.app.state.interfaces
    return service


FgObjectsDep = Annotated[FgObjectService, Depends(_fg_objects)]
InterfacesDep = Annotated[InterfaceService, Depends(_interfaces)]


def system_info() -> dict[str, Any]:
    return {
        "description": "Get the system information",
        "params": {
            "appliance_version": f"ZCE 5 (kernlb {__version__})",
            "edition": "community",
            "hostname": socket.gethostname(),
            "kernel_version": platform.release(),
            "language": "",
            "last_zapi_version": SUPPORTED_ZAPI_VERSIONS[-1],
            "platform": "nocloud",
            "supported_zapi_versions": list(SUPPORTED_ZAPI_VERSIONS),
            "system_date": time.asctime(),  # Perl's localtime: "Fri Dec  4 19:00:00 2026"
            "user": "root",  # the key runs as root, as in the original
            "zevenet_version": f"kernlb-{__version__}",
        },
    }


def _leaves(names: list[str]) -> dict[str, None] | None:
    """A branch of null leaves; an empty branch is null itself, never `{}`."""
    return {name: None for name in names} or None


def ids_tree(farms: FarmsDep, fg: FgObjectService, interfaces: InterfaceService) -> dict[str, Any]:
    farm_tree: dict[str, Any] = {}
    for view in farms.list():
        farm = view.farm
        service: dict[str, Any] = {
            # The real (stable) backend ids, where the original listed positions 0..n-1.
            "backends": _leaves([str(b.zapi_id) for b in farm.backends]),
        }
        if farm.fg_name:
            service["fg"] = {farm.fg_name: None}
        farm_tree[farm.name] = {"services": {"default_service": service}}
    links = interfaces.links.links()
    vlans = sorted(link.name for link in links if link.kind == "vlan")
    return {
        "farms": farm_tree or None,
        "farmguardians": _leaves([item.name for item in fg.list()]),
        "certificates": None,
        "interfaces": {
            "nic": _leaves([nic.name for nic in interfaces.nics()]),
            "vlan": _leaves(vlans),
            "virtual": _leaves([v.name for v in interfaces.virtuals()]),
        },
        "system": {"logs": None},
    }


def ids_body(farms: FarmsDep, fg: FgObjectService, interfaces: InterfaceService) -> dict[str, Any]:
    return {
        "description": "Get a load balancer object IDs",
        "params": ids_tree(farms, fg, interfaces),
    }


@router31.get(
    "/system/info", operation_id="getSystemInfo", **documented(SystemInfoResponse, errors=())
)
def get_system_info() -> dict[str, Any]:
    """The appliance, its edition ("community") and the ZAPI versions it serves."""
    return system_info()


@router31.get("/ids", operation_id="getIds", **documented(IdsResponse, errors=()))
def get_ids(farms: FarmsDep, fg: FgObjectsDep, interfaces: InterfacesDep) -> dict[str, Any]:
    """Every object id (farms, backends, farmguardians, interfaces) as a tree."""
    return ids_body(farms, fg, interfaces)


def _make_router40() -> APIRouter:
    router = new_router("v4.0 system")

    @router.get(
        "/system/info", operation_id="v40GetSystemInfo", **documented(SystemInfoResponse, errors=())
    )
    def get_system_info40() -> dict[str, Any]:
        """The appliance, its edition ("community") and the ZAPI versions it serves."""
        return system_info()

    @router.get("/ids", operation_id="v40GetIds", **documented(IdsResponse, errors=()))
    def get_ids40(farms: FarmsDep, fg: FgObjectsDep, interfaces: InterfacesDep) -> dict[str, Any]:
        """Every object id (farms, backends, farmguardians, interfaces) as a tree."""
        return ids_body(farms, fg, interfaces)

    return router


router40 = _make_router40()
