"""Network interfaces: the host's NICs and virtual interfaces (`eth0:vip1`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.errors import BadRequest, NotFound
from app.schemas import requests
from app.schemas.interfaces import (
    InterfaceListResponse,
    VirtualInterfaceActionResponse,
    VirtualInterfaceModifiedResponse,
    interface_item,
    nic_item,
    virtual_created,
    virtual_detail,
    virtual_item,
)
from app.services.interfaces import ACTION, ADD, MODIFY, InterfaceService

router = APIRouter(tags=["interfaces"], default_response_class=ZapiResponse)
VIRTUAL_ERRORS = {
    400: "Invalid name or address, the address is in use, or the interface is a farm's VIP",
    404: "Virtual interface not found",
}


def _interfaces(request: Request) -> InterfaceService:
    service: InterfaceService = request.app.state.interfaces
    return service


InterfacesDep = Annotated[InterfaceService, Depends(_interfaces)]


@router.get("/interfaces/nic", operation_id="listNics", **documented("NicListResponse", errors=()))
def list_nics(interfaces: InterfacesDep) -> dict[str, Any]:
    """The host's network interfaces (links), with their own IPv4 address."""
    return {
        "description": "List NIC interfaces",
        "interfaces": [nic_item(nic) for nic in interfaces.nics()],
    }


@router.get(
    "/interfaces/virtual",
    operation_id="listVirtualInterfaces",
    **documented("VirtualInterfaceListResponse", errors=()),
)
def list_virtual_interfaces(interfaces: InterfacesDep) -> dict[str, Any]:
    """The virtual interfaces kernlb manages."""
    return {
        "description": "List virtual interfaces",
        "interfaces": [virtual_item(view) for view in interfaces.virtuals()],
    }


@router.post(
    "/interfaces/virtual",
    operation_id="createVirtualInterface",
    status_code=201,
    **documented(
        "VirtualInterfaceCreatedResponse",
        status=201,
        body=requests.VirtualInterfaceCreate,
        errors=(400,),
        texts=VIRTUAL_ERRORS,
    ),
)
def create_virtual_interface(body: BodyDep, interfaces: InterfacesDep) -> ZapiResponse:
    """Add an IPv4 address to a link under the label PARENT:TAG; it is restored at start-up."""
    view = interfaces.create(body)
    return ZapiResponse({"description": ADD, "params": virtual_created(view)}, 201)


@router.get(
    "/interfaces/virtual/{name}",
    operation_id="getVirtualInterface",
    **documented("VirtualInterfaceResponse", texts=VIRTUAL_ERRORS),
)
def get_virtual_interface(name: str, interfaces: InterfacesDep) -> dict[str, Any]:
    """Show one virtual interface."""
    return {
        "description": f"Show virtual interface {name}",
        "interface": virtual_detail(interfaces.virtual(name)),
    }


@router.post(
    "/interfaces/virtual/{name}",
    operation_id="createNamedVirtualInterface",
    status_code=201,
    **documented(
        "VirtualInterfaceCreatedResponse",
        status=201,
        body=requests.VirtualInterfaceCreateNamed,
        errors=(400, 404),
        texts={**VIRTUAL_ERRORS, 404: "Request not found (the name does not fit one path segment)"},
    ),
)
def create_named_virtual_interface(
    name: str, body: BodyDep, interfaces: InterfacesDep
) -> ZapiResponse:
    """Add a virtual interface named by the path (a `name` in the body must be the same)."""
    request = requests.VirtualInterfaceCreateNamed.parse(body, description=ADD)
    if "name" in request.model_fields_set and request.name != name:
        raise BadRequest("The name in the body differs from the one in the path.", description=ADD)
    view = interfaces.create({**body, "name": name})
    return ZapiResponse({"description": ADD, "params": virtual_created(view)}, 201)


@router.delete(
    "/interfaces/virtual/{name}",
    operation_id="deleteVirtualInterface",
    **documented("DeletedResponse", errors=(400, 404), texts=VIRTUAL_ERRORS),
)
def delete_virtual_interface(name: str, interfaces: InterfacesDep) -> dict[str, Any]:
    """Delete a virtual interface; refused while a farm uses its address as VIP."""
    interfaces.delete(name)
    return {
        "description": "Delete virtual interface",
        "message": f"The virtual interface {name} has been deleted.",
        "success": "true",
    }


def _existing_virtual(interfaces: InterfaceService, name: str, description: str) -> None:
    try:
        interfaces.virtual(name)
    except NotFound:
        raise NotFound("Virtual interface not found", description=description) from None


@router.put(
    "/interfaces/virtual/{name}",
    operation_id="modifyVirtualInterface",
    **documented(
        VirtualInterfaceModifiedResponse,
        body=requests.VirtualInterfaceModify,
        errors=(400, 404),
        texts=VIRTUAL_ERRORS,
    ),
)
def modify_virtual_interface(name: str, body: BodyDep, interfaces: InterfacesDep) -> Any:
    """Give a virtual interface a new address.  Refused while a farm uses the old one as its
    VIP (ZAPI v4.0 can move the farms with it: `force`)."""
    _existing_virtual(interfaces, name, MODIFY)
    request = requests.VirtualInterfaceModify.parse(body, description=MODIFY)
    interfaces.modify(
        name,
        request.ip,
        move_farms=False,
        force_hint="Change the vip of those farms first (ZAPI v4.0 can move them: 'force').",
    )
    return {"description": MODIFY, "params": body}


@router.post(
    "/interfaces/virtual/{name}/actions",
    operation_id="virtualInterfaceAction",
    **documented(
        VirtualInterfaceActionResponse,
        body=requests.VirtualInterfaceAction,
        errors=(400, 404),
        texts=VIRTUAL_ERRORS,
    ),
)
def virtual_interface_action(name: str, body: BodyDep, interfaces: InterfacesDep) -> Any:
    """Set a virtual interface up (its address back on the link) or down (off it)."""
    _existing_virtual(interfaces, name, ACTION)
    action = requests.VirtualInterfaceAction.parse(body, description=ACTION).action
    interfaces.set_state(name, action == "up")
    return {"description": ACTION, "params": {"action": action}}


@router.get(
    "/interfaces",
    operation_id="listInterfaces",
    **documented(InterfaceListResponse, errors=()),
)
def list_interfaces(interfaces: InterfacesDep) -> dict[str, Any]:
    """Every interface: NICs, vlans and virtual interfaces."""
    return {
        "description": "List interfaces",
        "interfaces": [interface_item(item) for item in interfaces.all_interfaces()],
    }
