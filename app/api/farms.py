"""Farms: list, show, create, modify, delete, actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.api.deps import BodyDep, FarmsDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.api.http_farms import (
    HttpFarmsDep,
    http_farm_detail,
    http_farm_summary,
)
from app.domain.values import is_farm_name
from app.schemas import requests
from app.schemas.zapi import farm_detail, farm_list_item, vport_detail

router = APIRouter(tags=["farms"], default_response_class=ZapiResponse)


@router.get("/farms", operation_id="listFarms", **documented("FarmListResponse", errors=()))
def list_farms(farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """List every farm (http/https first, then l4xnat, as the original)."""
    return {"description": "List farms", "params": _http_items(http) + _l4_items(farms)}


def _l4_items(farms: FarmsDep) -> list[dict[str, Any]]:
    return [farm_list_item(v) for v in farms.summaries()]


def _http_items(http: HttpFarmsDep) -> list[dict[str, Any]]:
    return [
        {
            "farmname": v.farm.name,
            "profile": v.farm.listener,
            "status": v.status,
            "vip": v.farm.vip,
            "vport": str(v.farm.vport),
        }
        for v in http.list()
    ]


@router.get(
    "/farms/modules/lslb",
    operation_id="listLslbFarms",
    **documented("FarmListResponse", errors=()),
)
def list_lslb_farms(farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """List the LSLB farms (http, https, l4xnat)."""
    return {"description": "List LSLB farms", "params": _http_items(http) + _l4_items(farms)}


@router.get("/farms/{name}", operation_id="getFarm", **documented("AnyFarmResponse"))
def get_farm(name: str, request: Request, farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Show one farm with its backends, and its `ipds` rules when it has any (Zevenet EE);
    http/https farms: with their services."""
    if http.exists(name):
        return http_farm_detail(http.get(name, description=f"Show farm {name}"))
    view = farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    detail = farm_detail(view)
    rules = request.app.state.ipds.rules_of(view.farm)
    if rules["blacklists"] or rules["dos"]:
        detail["ipds"] = rules
    return detail


@router.get(
    "/farms/{name}/summary",
    operation_id="getFarmSummary",
    **documented("AnyFarmSummaryResponse"),
)
def get_farm_summary(name: str, farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Show one farm (for l4xnat the same as the full view; http: service names only)."""
    if http.exists(name):
        return http_farm_summary(http.get(name, description=f"Show farm {name}"))
    view = farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    return farm_detail(view)


@router.post(
    "/farms",
    operation_id="createFarm",
    status_code=201,
    **documented("FarmCreatedResponse", status=201, body=requests.FarmCreate, errors=(400,)),
)
def create_farm(body: BodyDep, farms: FarmsDep, http: HttpFarmsDep) -> ZapiResponse:
    """Create an l4xnat or http farm; it starts at once."""
    profile = body.get("profile")
    if (
        isinstance(profile, str)
        and profile.lower() == "http"
        and is_farm_name(body.get("farmname"))
    ):
        created, interface = http.create(body, profile)
        params = {
            "farmname": created.name,
            "interface": interface,
            "profile": profile,
            "vip": created.vip,
            "vport": created.vport,
        }
        return ZapiResponse(
            {"description": f"Creating farm '{created.name}'", "params": params}, 201
        )
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
    **documented("EchoResponse", body=requests.FarmUpdate, errors=(400, 404, 410)),
)
def modify_farm(name: str, body: BodyDep, farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Modify a farm: every field applies, or none."""
    if http.exists(name):
        return {"description": f"Modify HTTP farm {name}", "params": http.modify(name, body)}
    echo = farms.modify(name, body)
    return {"description": f"Modify L4xNAT farm '{name}'", "params": echo}


@router.delete(
    "/farms/{name}",
    operation_id="deleteFarm",
    **documented("DeletedResponse", errors=(400, 404)),
)
def delete_farm(name: str, farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Delete a farm and every kernel object (or HAProxy section) of it."""
    if http.exists(name):
        http.delete(name)
    else:
        farms.delete(name)
    return {
        "description": f"Delete farm {name}",
        "message": f"The Farm {name} has been deleted.",
        "success": "true",
    }


@router.put(
    "/farms/{name}/actions",
    operation_id="farmAction",
    **documented("ActionResponse", body=requests.FarmActionBody, errors=(400, 404)),
)
def farm_action(name: str, body: BodyDep, farms: FarmsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Start, stop or restart a farm."""
    if http.exists(name):
        action, status = str(body.get("action")), http.action(name, body.get("action"))
    else:
        action, status = farms.action(name, body)
    return {
        "description": f"Set a new action in {name}",
        "params": {"action": action, "status": status},
    }
