"""Farmguardian: PUT /farms/NAME/fg (v3.1) and GET /farms/NAME/fg (kernlb extension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import BodyDep, FarmGuardianDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.api.http_farms import HttpFarmsDep
from app.schemas import docs, requests
from app.schemas.fg import fg_detail, fg_modified_params

router = APIRouter(tags=["farmguardian"], default_response_class=ZapiResponse)


@router.put(
    "/farms/{name}/fg",
    operation_id="modifyFarmGuardian",
    **documented(
        docs.FarmGuardianModifiedResponse, body=requests.FarmGuardianUpdate, errors=(400, 404)
    ),
)
def modify_farmguardian(
    name: str, body: BodyDep, fg: FarmGuardianDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Set a farm's health checks (farmguardian); http farms: a service's (`service`), which
    HAProxy runs."""
    owner = http.modify_farmguardian(name, body) if http.exists(name) else fg.modify(name, body)
    return {
        "description": "Modify farm guardian",
        "message": f"Success, some parameters have been changed in farm guardian in farm {name}.",
        "params": fg_modified_params(owner, body),
    }


@router.get(
    "/farms/{name}/fg",
    operation_id="getFarmGuardian",
    **documented(docs.FarmGuardianResponse),
)
def show_farmguardian(name: str, fg: FarmGuardianDep) -> dict[str, Any]:
    """Show a farm's health checks and each backend's last transition (kernlb extension)."""
    return fg_detail(fg.view(name))
