"""IPDS (Zevenet's shape): /ipds/blacklists, /ipds/dos, /farms/NAME/ipds/..."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.schemas import ipds as schemas
from app.services.ipds import BLACKLIST, DOS, IpdsService

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


def _done(answer: tuple[str, str]) -> dict[str, Any]:
    """Zevenet's success answer without params: (description, message)."""
    description, message = answer
    return {"description": description, "success": "true", "message": message}


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
    return ZapiResponse({"description": f"Post list {params['name']}", "params": params}, 201)


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
    return {"description": f"Modify list {name}.", "params": ipds.modify_list(name, body)}


@router.delete(
    "/ipds/blacklists/{name}", operation_id="deleteIpdsList", **_doc(schemas.IpdsDeletedResponse)
)
def delete_list(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Delete a list that no farm uses."""
    ipds.delete_list(name)
    return _done((f"Delete list '{name}'", f"The list {name} has been deleted successful."))


@router.get(
    "/ipds/blacklists/{name}/sources",
    operation_id="listIpdsSources",
    **_doc(schemas.IpdsListResponse, errors=(404,)),
)
def list_sources(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """The sources of a list, with their ids."""
    return {"description": f"Get {name} sources", "params": ipds.list_sources(name)}


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
            "description": f"Post source to {name}.",
            "message": f"Added {params['source']} successful.",
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
    ipds.delete_source(name, source_id)
    description = f"Delete source from the list {name}"
    return _done((description, f"Source {source_id} has been deleted successful."))


# -- DoS -----------------------------------------------------------------------------------------


@router.get(
    "/ipds/dos/rules",
    operation_id="listIpdsDosRuleTypes",
    **_doc(schemas.IpdsObjectResponse, errors=()),
)
def dos_rule_types(ipds: IpdsDep) -> dict[str, Any]:
    """The DoS rules a farm can take."""
    return {"description": "List the possible DoS rules", "params": ipds.dos_rules()}


@router.get("/ipds/dos", operation_id="listIpdsDos", **_doc(schemas.IpdsListResponse, errors=()))
def list_dos(ipds: IpdsDep) -> dict[str, Any]:
    """List the DoS rules with their parameters."""
    return {"description": "List the DoS rules", "params": ipds.dos_list()}


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
        {"description": f"Create the DoS rule {params['rule']}", "params": params}, 201
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
    params = ipds.modify_dos(name, body)
    return {"description": f"Modify the DoS rule {name}", "success": "true", "params": params}


@router.delete(
    "/ipds/dos/{name}", operation_id="deleteIpdsDos", **_doc(schemas.IpdsDeletedResponse)
)
def delete_dos(name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Delete a DoS rule that no farm uses."""
    ipds.delete_dos(name)
    return _done((f"Delete the DoS rule {name}", f"Deleted {name} successful."))


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
    **_doc(schemas.IpdsDeletedResponse, body=schemas.FarmRuleAttach),
)
def attach_list(farm: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Apply a list to a farm."""
    return _done(ipds.attach(BLACKLIST, farm, body))


@router.delete(
    "/farms/{farm}/ipds/blacklists/{name}",
    operation_id="detachIpdsList",
    **_doc(schemas.IpdsDeletedResponse),
)
def detach_list(farm: str, name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Remove a list from a farm."""
    return _done(ipds.detach(BLACKLIST, farm, name))


@router.post(
    "/farms/{farm}/ipds/dos",
    operation_id="attachIpdsDos",
    **_doc(schemas.IpdsDeletedResponse, body=schemas.FarmRuleAttach),
)
def attach_dos(farm: str, body: BodyDep, ipds: IpdsDep) -> dict[str, Any]:
    """Apply a DoS rule to a farm."""
    return _done(ipds.attach(DOS, farm, body))


@router.delete(
    "/farms/{farm}/ipds/dos/{name}",
    operation_id="detachIpdsDos",
    **_doc(schemas.IpdsDeletedResponse),
)
def detach_dos(farm: str, name: str, ipds: IpdsDep) -> dict[str, Any]:
    """Remove a DoS rule from a farm."""
    return _done(ipds.detach(DOS, farm, name))
