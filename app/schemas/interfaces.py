"""`/interfaces/*` bodies (reference §2.3; the Go client's fields, zapi31.md §10.1)."""

from __future__ import annotations

from typing import Any

from app.services.interfaces import NicView, VirtualView


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
