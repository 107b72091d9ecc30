"""l4xnat backends: list, add, modify, delete, maintenance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import BackendsDep, BodyDep
from app.api.docs import documented
from app.api.http import ZapiResponse
from app.schemas import docs, requests
from app.schemas.zapi import backend_item

router = APIRouter(tags=["backends"], default_response_class=ZapiResponse)


@router.get(
    "/farms/{name}/backends",
    operation_id="listBackends",
    **documented(docs.BackendListResponse),
)
def list_backends(name: str, backends: BackendsDep) -> dict[str, Any]:
    """List a farm's backends."""
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
        docs.BackendCreatedResponse, status=201, body=requests.BackendCreate, errors=(400, 404)
    ),
)
def create_backend(name: str, body: BodyDep, backends: BackendsDep) -> ZapiResponse:
    """Add a backend (its id is the lowest free one)."""
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
    **documented(docs.BackendModifiedResponse, body=requests.BackendUpdate, errors=(400, 404)),
)
def modify_backend(
    name: str, backend_id: int, body: BodyDep, backends: BackendsDep
) -> dict[str, Any]:
    """Modify a backend."""
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
    **documented(docs.BackendDeletedResponse, errors=(400, 404)),
)
def delete_backend(name: str, backend_id: int, backends: BackendsDep) -> dict[str, Any]:
    """Delete a backend and cut its connections."""
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
    **documented(docs.MaintenanceResponse, body=requests.MaintenanceBody, errors=(400, 404)),
)
def set_maintenance(
    name: str, backend_id: int, body: BodyDep, backends: BackendsDep
) -> dict[str, Any]:
    """Put a backend into maintenance (drain or cut) or back up."""
    action, status = backends.maintenance(name, backend_id, body)
    return {
        "description": "Set backend status",
        "params": {"action": action, "farm": {"status": status}},
    }
