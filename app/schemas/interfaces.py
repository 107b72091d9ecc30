"""`/interfaces/*` bodies (reference §2.3; the Go client's fields, zapi31.md §10.1)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.views import InterfaceItem, NicView, VirtualView


def nic_item(nic: NicView) -> dict[str, Any]:
    return {
        "gateway": nic.gateway,
        "has_vlan": "true" if nic.has_vlan else "false",
        "ip": nic.ip,
        "mac": nic.mac,
        "name": nic.name,
        "netmask": nic.netmask,
        "status": nic.status,
    }


def virtual_detail(view: VirtualView) -> dict[str, Any]:
    """`interface` of `GET /interfaces/virtual/NAME`."""
    return {
        "gateway": view.gateway,
        "ip": view.ip,
        "mac": view.mac,
        "name": view.name,
        "netmask": view.netmask,
        "status": view.status,
    }


def virtual_item(view: VirtualView) -> dict[str, Any]:
    """An item of `GET /interfaces/virtual`: the detail plus its `parent`."""
    return {**virtual_detail(view), "parent": view.parent}


def virtual_created(view: VirtualView) -> dict[str, Any]:
    """`params` of `POST /interfaces/virtual` (the original left `status` out)."""
    return {
        "gateway": view.gateway,
        "ip": view.ip,
        "mac": view.mac,
        "name": view.name,
        "netmask": view.netmask,
    }


def interface_item(item: InterfaceItem) -> dict[str, Any]:
    """An item of `GET /interfaces`; NICs add `is_slave` (never, in kernlb) and `has_vlan`."""
    body = {
        "gateway": item.gateway,
        "ip": item.ip,
        "mac": item.mac,
        "name": item.name,
        "netmask": item.netmask,
        "status": item.status,
        "type": item.type,
    }
    if item.type == "nic":
        body["is_slave"] = "false"
        body["has_vlan"] = "true" if item.has_vlan else "false"
    return body


# -- OpenAPI models of the answers of the routes added for zcli (v3.1 and v4.0 share them) ----


class VirtualInterfaceModifiedResponse(BaseModel):
    description: str
    params: dict[str, Any]
    message: str | None = Field(default=None, description="v4.0 only")


class VirtualInterfaceActionParams(BaseModel):
    action: Literal["up", "down"]


class VirtualInterfaceActionResponse(BaseModel):
    description: str
    params: VirtualInterfaceActionParams
    message: str | None = Field(default=None, description="v4.0 only")


class InterfaceListItem(BaseModel):
    gateway: str
    ip: str
    mac: str
    name: str
    netmask: str
    status: Literal["up", "down"]
    type: Literal["nic", "vlan", "virtual"]
    is_slave: Literal["false"] | None = Field(default=None, description="NICs only")
    has_vlan: Literal["true", "false"] | None = Field(default=None, description="NICs only")


class InterfaceListResponse(BaseModel):
    description: Literal["List interfaces"]
    interfaces: list[InterfaceListItem]
