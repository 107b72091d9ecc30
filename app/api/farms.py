"""Farms: list, show, create, modify, delete, actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.api.deps import BodyDep, FarmsDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.schemas import docs, requests
from app.schemas.zapi import farm_detail, farm_list_item, vport_detail

router = APIRouter(tags=["farms"], default_response_class=ZapiResponse)


@router.get("/farms", operation_id="listFarms", **documented(docs.FarmListResponse, errors=()))
def list_farms(farms: FarmsDep) -> dict[str, Any]:
    """List every farm."""
    return {"description": "List farms", "params": [farm_list_item(v) for v in farms.summaries()]}


@router.get(
    "/farms/modules/lslb",
    operation_id="listLslbFarms",
    **documented(docs.FarmListResponse, errors=()),
)
def list_lslb_farms(farms: FarmsDep) -> dict[str, Any]:
    """List the LSLB farms (http, https, l4xnat)."""
    items = [
        farm_list_item(v) for v in farms.summaries() if v.profile in ("http", "https", "l4xnat")
    ]
    return {"description": "List LSLB farms", "params": items}


@router.get("/farms/{name}", operation_id="getFarm", **documented(docs.FarmResponse))
def get_farm(name: str, request: Request, farms: FarmsDep) -> dict[str, Any]:
    """Show one farm with its backends, and its `ipds` rules when it has any (Zevenet EE)."""
    view = farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    detail = farm_detail(view)
    rules = request.app.state.ipds.farm_rules(name)
    if rules["blacklists"] or rules["dos"]:
        detail["ipds"] = rules
    return detail


@router.get("/farms/{name}/summary", operation_id="getFarmSummary", **documented(docs.FarmResponse))
def get_farm_summary(name: str, farms: FarmsDep) -> dict[str, Any]:
    """Show one farm (for l4xnat the same as the full view)."""
    view = farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    return farm_detail(view)


@router.post(
    "/farms",
    operation_id="createFarm",
    status_code=201,
    **documented(docs.FarmCreatedResponse, status=201, body=requests.FarmCreate, errors=(400,)),
)
def create_farm(body: BodyDep, farms: FarmsDep) -> ZapiResponse:
    """Create an l4xnat farm; it starts at once."""
    view, interface, profile = farms.create(body)
    farm = view.farm
    params = {
        "farmname": farm.name,
        "interface": interface,
        "profile": profile,
        "vip": farm.vip,
        "vport": vport_detail(farm.vport),
    }
    return ZapiResponse({"description": f"Creating farm '{farm.name}'", "params": params}, 201)


@router.put(
    "/farms/{name}",
    operation_id="modifyFarm",
    **documented(docs.EchoResponse, body=requests.FarmUpdate, errors=(400, 404, 410)),
)
def modify_farm(name: str, body: BodyDep, farms: FarmsDep) -> dict[str, Any]:
    """Modify a farm: every field applies, or none."""
    echo = farms.modify(name, body)
    return {"description": f"Modify L4xNAT farm '{name}'", "params": echo}


@router.delete(
    "/farms/{name}",
    operation_id="deleteFarm",
    **documented(docs.DeletedResponse, errors=(400, 404)),
)
def delete_farm(name: str, farms: FarmsDep) -> dict[str, Any]:
    """Delete a farm and every kernel object of it."""
    farms.delete(name)
    return {
        "description": f"Delete farm {name}",
        "message": f"The Farm {name} has been deleted.",
        "success": "true",
    }


@router.put(
    "/farms/{name}/actions",
    operation_id="farmAction",
    **documented(docs.ActionResponse, body=requests.FarmActionBody, errors=(400, 404)),
)
def farm_action(name: str, body: BodyDep, farms: FarmsDep) -> dict[str, Any]:
    """Start, stop or restart a farm."""
    action, status = farms.action(name, body)
    return {
        "description": f"Set a new action in {name}",
        "params": {"action": action, "status": status},
    }
