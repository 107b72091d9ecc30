"""l4xnat backends: list, add, modify, delete, maintenance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import BackendsDep, BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.api.http_farms import HttpFarmsDep
from app.errors import BadRequest, NotFound
from app.schemas import requests
from app.schemas.zapi import backend_item

router = APIRouter(tags=["backends"], default_response_class=ZapiResponse)


@router.get(
    "/farms/{name}/backends",
    operation_id="listBackends",
    **documented("BackendListResponse"),
)
def list_backends(name: str, backends: BackendsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """List a farm's backends."""
    if http.exists(name):
        raise BadRequest(
            f"The farm {name} with profile http does not support this request.",
            description="List backends",
        )
    view = backends.farms.get(name, description="List backends")
    return {
        "description": "List backends",
        "params": [backend_item(b, view.backend_status(b)) for b in view.farm.backends],
    }


@router.post(
    "/farms/{name}/backends",
    operation_id="createBackend",
    status_code=201,
    **documented(
        "BackendCreatedResponse", status=201, body=requests.BackendCreate, errors=(400, 404)
    ),
)
def create_backend(
    name: str, body: BodyDep, backends: BackendsDep, http: HttpFarmsDep
) -> ZapiResponse:
    """Add a backend (its id is the lowest free one)."""
    if http.exists(name):
        raise BadRequest(
            "The http farm profile can have backends in services only.",
            description="New farm backend",
        )
    params, status = backends.add(name, body)
    return ZapiResponse(
        {
            "description": "New farm backend",
            "message": "Backend added",
            "params": params,
            "status": status,
        },
        201,
    )


@router.put(
    "/farms/{name}/backends/{backend_id:int}",
    operation_id="modifyBackend",
    **documented("BackendModifiedResponse", body=requests.BackendUpdate, errors=(400, 404)),
)
def modify_backend(
    name: str, backend_id: int, body: BodyDep, backends: BackendsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Modify a backend."""
    if http.exists(name):
        raise NotFound(
            "The http farm profile has backends only in services.", description="Modify backend"
        )
    echo, status = backends.modify(name, backend_id, body)
    return {
        "description": "Modify backend",
        "message": "Backend modified",
        "params": echo,
        "status": status,
    }


@router.delete(
    "/farms/{name}/backends/{backend_id:int}",
    operation_id="deleteBackend",
    **documented("BackendDeletedResponse", errors=(400, 404)),
)
def delete_backend(
    name: str, backend_id: int, backends: BackendsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Delete a backend and cut its connections."""
    if http.exists(name):
        raise BadRequest(
            "The http farm profile has backends only in services.", description="Delete backend"
        )
    status = backends.delete(name, backend_id)
    return {
        "description": "Delete backend",
        "message": "Backend removed",
        "status": status,
        "success": "true",
    }


@router.put(
    "/farms/{name}/backends/{backend_id:int}/maintenance",
    operation_id="setBackendMaintenance",
    **documented("MaintenanceResponse", body=requests.MaintenanceBody, errors=(400, 404)),
)
def set_maintenance(
    name: str, backend_id: int, body: BodyDep, backends: BackendsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Put a backend into maintenance (drain or cut) or back up."""
    if http.exists(name):
        raise NotFound(
            "Only L4xNAT farm profile supports this feature.", description="Set backend status"
        )
    action, status = backends.maintenance(name, backend_id, body)
    return {
        "description": "Set backend status",
        "params": {"action": action, "farm": {"status": status}},
    }
