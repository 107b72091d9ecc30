"""Farmguardian: PUT /farms/NAME/fg (v3.1) and GET /farms/NAME/fg (kernlb extension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import BodyDep, FarmGuardianDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.api.http_farms import HttpFarmsDep, http_backend_item
from app.schemas import requests
from app.schemas.fg import fg_detail, fg_modified_params, fg_params
from app.services.http_farms import backend_status

router = APIRouter(tags=["farmguardian"], default_response_class=ZapiResponse)


@router.put(
    "/farms/{name}/fg",
    operation_id="modifyFarmGuardian",
    **documented(
        "FarmGuardianModifiedResponse", body=requests.FarmGuardianUpdate, errors=(400, 404)
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
    **documented("FarmGuardianResponse"),
)
def show_farmguardian(name: str, fg: FarmGuardianDep) -> dict[str, Any]:
    """Show a farm's health checks and each backend's last transition (kernlb extension)."""
    return fg_detail(fg.view(name))


@router.put(
    "/farms/{name}/services/{service}/fg",
    operation_id="modifyServiceFarmGuardian",
    **documented(
        "FarmGuardianModifiedResponse", body=requests.FarmGuardianUpdate, errors=(400, 404)
    ),
)
def modify_service_farmguardian(
    name: str, service: str, body: BodyDep, fg: FarmGuardianDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """An http service's health checks (kernlb extension): `PUT /farms/NAME/fg` with the
    service named by the path."""
    return modify_farmguardian(name, {**body, "service": service}, fg, http)


@router.get(
    "/farms/{name}/services/{service}/fg",
    operation_id="getServiceFarmGuardian",
    **documented("ServiceFarmGuardianResponse"),
)
def show_service_farmguardian(name: str, service: str, http: HttpFarmsDep) -> dict[str, Any]:
    """An http service's health checks and its backends' statuses (kernlb extension)."""
    _farm, found = http.service(name, service)
    down = http.engine.down_servers()
    return {
        "description": f"Show farm guardian of {name} service {service}",
        "params": fg_params(found),
        "backends": [
            http_backend_item(b, i, backend_status(b, down)) for i, b in enumerate(found.backends)
        ],
    }
