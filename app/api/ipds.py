"""IPDS (Zevenet's shape): /ipds/blacklists, /ipds/dos, /farms/NAME/ipds/..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.schemas import ipds as schemas
from app.services.ipds import IpdsService

router = APIRouter(tags=["ipds"], default_response_class=ZapiResponse)

NOT_FOUND = {404: "List, DoS rule, source or farm not found"}


def ipds_service(request: Request) -> IpdsService:
    service: IpdsService = request.app.state.ipds
    return service


IpdsDep = Annotated[IpdsService, Depends(ipds_service)]


def _doc(
    success: type[Any],
    *,
    status: int = 200,
    body: type[Any] | None = None,
    errors: tuple[int, ...] = (400, 404),
) -> dict[str, Any]:
    return documented(success, status=status, body=body, errors=errors, texts=NOT_FOUND)


# -- lists -------------------------------------------------------------------------------------


@router.get(
    "/ipds/blacklists", operation_id="listIpdsLists", **_doc(schemas.IpdsListResponse, errors=())
)
def list_lists(ipds: IpdsDep) -> dict[str, Any]:
    """List the blacklists and whitelists (`sources` is their number of sources here)."""
    return {"description": "Get black lists", "params": ipds.lists()}


@router.post(
    "/ipds/blacklists",
    operation_id="createIpdsList",
    status_code=201,
    **_doc(schemas.IpdsObjectResponse, status=201, body=schemas.ListCreate, errors=(400,)),
)
def create_list(body: BodyDep, ipds: IpdsDep) -> ZapiResponse:
    """Create a list: `policy` deny (blacklist) or allow (whitelist), `type` local."""
    params = ipds.create_list(body)
    return ZapiResponse({"description": "Create a blacklist rule.", "params": params}, 201)


@router.get(
    "/ipds/blacklists/{name}",
    operation_id="getIpdsList",
    **_doc(schemas.IpdsObjectResponse, errors=(404,)),
)
def get_list(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Show a list with its sources."""
    return {"description": f"Get list {name}", "params": ipds.get_list(name)}


@router.put(
    "/ipds/blacklists/{name}",
    operation_id="modifyIpdsList",
    **_doc(schemas.IpdsObjectResponse, body=schemas.ListUpdate),
)
def modify_list(name: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Change a list's policy, or replace all its sources at once (`sources`)."""
    return {"description": f"Modify list {name}", "params": ipds.modify_list(name, body)}


@router.delete(
    "/ipds/blacklists/{name}", operation_id="deleteIpdsList", **_doc(schemas.IpdsDeletedResponse)
)
def delete_list(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Delete a list that no farm uses."""
    ipds.delete_list(name)
    return {
        "description": f"Delete list {name}",
        "success": "true",
        "message": f"The list {name} has been deleted successfully.",
    }


@router.get(
    "/ipds/blacklists/{name}/sources",
    operation_id="listIpdsSources",
    **_doc(schemas.IpdsListResponse, errors=(404,)),
)
def list_sources(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """The sources of a list, with their ids."""
    return {"description": f"Get the sources of the list {name}", "params": ipds.list_sources(name)}


@router.post(
    "/ipds/blacklists/{name}/sources",
    operation_id="addIpdsSource",
    status_code=201,
    **_doc(schemas.IpdsMessageResponse, status=201, body=schemas.SourceAdd),
)
def add_source(name: str, body: BodyDep, ipds: IpdsDep) -> ZapiResponse:
    """Add an address or CIDR to a list (one element change in the kernel)."""
    params = ipds.add_source(name, body)
    return ZapiResponse(
        {
            "description": "Post a source",
            "message": f"Added {params['source']} to the list {name}.",
            "params": params,
        },
        201,
    )


@router.delete(
    "/ipds/blacklists/{name}/sources/{source_id}",
    operation_id="deleteIpdsSource",
    **_doc(schemas.IpdsDeletedResponse),
)
def delete_source(name: str, source_id: str, ipds: IpdsDep) -> dict[str, Any]:
    """Remove a source from a list by its id (one element change in the kernel)."""
    text = ipds.delete_source(name, source_id)
    return {
        "description": "Delete a source",
        "success": "true",
        "message": f"Source {source_id} ({text}) has been deleted successfully.",
    }


# -- DoS -----------------------------------------------------------------------------------------


@router.get(
    "/ipds/dos/rules",
    operation_id="listIpdsDosRuleTypes",
    **_doc(schemas.IpdsObjectResponse, errors=()),
)
def dos_rule_types(ipds: IpdsDep) -> dict[str, Any]:
    """The DoS rules a farm can take."""
    return {"description": "Get DoS rules", "params": ipds.dos_rules()}


@router.get("/ipds/dos", operation_id="listIpdsDos", **_doc(schemas.IpdsListResponse, errors=()))
def list_dos(ipds: IpdsDep) -> dict[str, Any]:
    """List the DoS rules with their parameters."""
    return {"description": "Get DoS settings.", "params": ipds.dos_list()}


@router.post(
    "/ipds/dos",
    operation_id="createIpdsDos",
    status_code=201,
    **_doc(schemas.IpdsObjectResponse, status=201, body=schemas.DosCreate, errors=(400,)),
)
def create_dos(body: BodyDep, ipds: IpdsDep) -> ZapiResponse:
    """Create a DoS rule with Zevenet's default parameters."""
    params = ipds.create_dos(body)
    return ZapiResponse(
        {"description": f"Create the DoS rule {params['name']}", "params": params}, 201
    )


@router.get(
    "/ipds/dos/{name}", operation_id="getIpdsDos", **_doc(schemas.IpdsObjectResponse, errors=(404,))
)
def get_dos(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Show a DoS rule."""
    return {"description": f"Get the DoS rule {name}", "params": ipds.get_dos(name)}


@router.put(
    "/ipds/dos/{name}",
    operation_id="modifyIpdsDos",
    **_doc(schemas.IpdsObjectResponse, body=schemas.DosUpdate),
)
def modify_dos(name: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Change a DoS rule's parameters (every farm using it follows in the same batch)."""
    return {"description": f"Modify the DoS rule {name}", "params": ipds.modify_dos(name, body)}


@router.delete(
    "/ipds/dos/{name}", operation_id="deleteIpdsDos", **_doc(schemas.IpdsDeletedResponse)
)
def delete_dos(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Delete a DoS rule that no farm uses."""
    ipds.delete_dos(name)
    return {
        "description": f"Delete the DoS rule {name}",
        "success": "true",
        "message": f"The DoS rule {name} has been deleted successfully.",
    }


# -- farms ---------------------------------------------------------------------------------------


@router.get(
    "/farms/{farm}/ipds",
    operation_id="getFarmIpds",
    **_doc(schemas.IpdsObjectResponse, errors=(404,)),
)
def farm_ipds(farm: str, ipds: IpdsDep) -> dict[str, Any]:
    """The lists and DoS rules applied to a farm."""
    return {
        "description": f"Get the IPDS rules of the farm {farm}",
        "params": ipds.farm_rules(farm),
    }


@router.post(
    "/farms/{farm}/ipds/blacklists",
    operation_id="attachIpdsList",
    **_doc(schemas.IpdsMessageResponse, body=schemas.FarmRuleAttach),
)
def attach_list(farm: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Apply a list to a farm."""
    name = ipds.attach_list(farm, body)
    return {
        "description": "Apply a rule to a farm",
        "message": f"Blacklist rule {name} was applied successfully to the farm {farm}.",
    }


@router.delete(
    "/farms/{farm}/ipds/blacklists/{name}",
    operation_id="detachIpdsList",
    **_doc(schemas.IpdsDeletedResponse),
)
def detach_list(farm: str, name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Remove a list from a farm."""
    ipds.detach_list(farm, name)
    return {
        "description": "Delete a rule from a farm",
        "success": "true",
        "message": f"Blacklist rule {name} was removed successfully from the farm {farm}.",
    }


@router.post(
    "/farms/{farm}/ipds/dos",
    operation_id="attachIpdsDos",
    **_doc(schemas.IpdsMessageResponse, body=schemas.FarmRuleAttach),
)
def attach_dos(farm: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Apply a DoS rule to a farm."""
    name = ipds.attach_dos(farm, body)
    return {
        "description": "Apply a rule to a farm",
        "message": f"DoS rule {name} was applied successfully to the farm {farm}.",
    }


@router.delete(
    "/farms/{farm}/ipds/dos/{name}",
    operation_id="detachIpdsDos",
    **_doc(schemas.IpdsDeletedResponse),
)
def detach_dos(farm: str, name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Remove a DoS rule from a farm."""
    ipds.detach_dos(farm, name)
    return {
        "description": "Delete a rule from a farm",
        "success": "true",
        "message": f"DoS rule {name} was removed successfully from the farm {farm}.",
    }
