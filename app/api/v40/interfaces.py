"""ZAPI v4.0 interfaces: `GET /interfaces` and virtual interfaces (zapi40-l4.md §6).

Unlike the farm handlers, 4.0's virtual-interface PUT and actions run the parameter checker
before looking the interface up.
"""

from __future__ import annotations

from typing import Any

from app.api.deps import FarmsDep
from app.api.http import ZapiResponse
from app.api.interfaces import InterfacesDep
from app.api.v40.base import Body40, documented40, new_router
from app.errors import BadRequest, NotFound
from app.schemas.interfaces import (
    InterfaceListResponse,
    VirtualInterfaceActionResponse,
    VirtualInterfaceModifiedResponse,
    interface_item,
    virtual_created,
    virtual_detail,
    virtual_item,
)
from app.schemas.v40 import VirtualAction40, VirtualCreate40, VirtualModify40, check_params
from app.services.interfaces import ACTION, ADD, DELETE, MODIFY

router = new_router("v4.0 interfaces")


@router.get(
    "/interfaces",
    operation_id="v40ListInterfaces",
    **documented40(InterfaceListResponse, errors=()),
)
def list_interfaces(interfaces: InterfacesDep) -> dict[str, Any]:
    """Every interface: NICs, vlans and virtual interfaces."""
    return {
        "description": "List interfaces",
        "interfaces": [interface_item(item) for item in interfaces.all_interfaces()],
    }


@router.get(
    "/interfaces/virtual",
    operation_id="v40ListVirtualInterfaces",
    **documented40("VirtualInterfaceListResponse", errors=()),
)
def list_virtual_interfaces(interfaces: InterfacesDep) -> dict[str, Any]:
    """The virtual interfaces kernlb manages."""
    return {
        "description": "List virtual interfaces",
        "interfaces": [virtual_item(view) for view in interfaces.virtuals()],
    }


@router.get(
    "/interfaces/virtual/{name}",
    operation_id="v40GetVirtualInterface",
    **documented40("VirtualInterfaceResponse"),
)
def get_virtual_interface(name: str, interfaces: InterfacesDep) -> dict[str, Any]:
    """Show one virtual interface."""
    return {
        "description": f"Show virtual interface {name}",
        "interface": virtual_detail(interfaces.virtual(name)),
    }


@router.post(
    "/interfaces/virtual",
    operation_id="v40CreateVirtualInterface",
    status_code=201,
    **documented40(
        "VirtualInterfaceCreatedResponse", status=201, body=VirtualCreate40, errors=(400,)
    ),
)
def create_virtual_interface(body: Body40, interfaces: InterfacesDep) -> ZapiResponse:
    """Add an address to a link under the label PARENT:TAG; it is restored at start-up."""
    checked = check_params(VirtualCreate40, body, description=ADD)
    view = interfaces.create({"name": checked.name, "ip": checked.ip})
    return ZapiResponse(
        {
            "description": ADD,
            "message": f"The {view.name} Virtual interface has been created successfully",
            "params": virtual_created(view),
        },
        201,
    )


@router.put(
    "/interfaces/virtual/{name}",
    operation_id="v40ModifyVirtualInterface",
    **documented40(VirtualInterfaceModifiedResponse, body=VirtualModify40, errors=(400, 404)),
)
def modify_virtual_interface(name: str, body: Body40, interfaces: InterfacesDep) -> Any:
    """A new address; with `force: "true"` the farms on the old one move to it."""
    checked = check_params(VirtualModify40, body, description=MODIFY)
    if checked.ip is not None:
        interfaces.modify(
            name,
            checked.ip,
            move_farms=checked.force == "true",
            force_hint="If you are sure, repeat with parameter 'force'. All farms using this "
            "interface will be restarted.",
        )
    else:
        try:
            interfaces.virtual(name)
        except NotFound:
            raise NotFound("Virtual interface not found", description=MODIFY) from None
    return {
        "description": MODIFY,
        "message": f"The {name} Virtual interface has been updated successfully",
        "params": body,
    }


@router.post(
    "/interfaces/virtual/{name}/actions",
    operation_id="v40VirtualInterfaceAction",
    **documented40(VirtualInterfaceActionResponse, body=VirtualAction40, errors=(400, 404)),
)
def virtual_interface_action(name: str, body: Body40, interfaces: InterfacesDep) -> Any:
    """Set a virtual interface up (its address back on the link) or down (off it)."""
    checked = check_params(VirtualAction40, body, description=ACTION)
    interfaces.set_state(name, checked.action == "up")
    return {
        "description": ACTION,
        "message": f"The {name} Virtual interface is {checked.action}",
        "params": {"action": checked.action},
    }


@router.delete(
    "/interfaces/virtual/{name}",
    operation_id="v40DeleteVirtualInterface",
    **documented40("DeletedResponse", errors=(400,)),
)
def delete_virtual_interface(
    name: str, interfaces: InterfacesDep, farms: FarmsDep
) -> dict[str, Any]:
    """Delete a virtual interface; refused while a farm uses its address as VIP."""
    try:
        view = interfaces.virtual(name)
    except NotFound:
        raise BadRequest(
            f"The virtual interface {name} doesn't exist.", description=DELETE
        ) from None
    users = sorted(v.farm.name for v in farms.list() if v.farm.vip == view.ip)
    if users:
        raise BadRequest(
            f"This interface is being used as farm vip in the farm(s): {', '.join(users)}.",
            description=DELETE,
        )
    interfaces.delete(name)
    return {
        "description": DELETE,
        "message": f"The virtual interface {name} has been deleted.",
        "success": "true",
    }
