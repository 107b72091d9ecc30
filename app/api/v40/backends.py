"""ZAPI v4.0 l4xnat backends: list, add, modify, delete, maintenance (zapi40-l4.md §3.7).

zcli addresses them as `/farms/F/services/default_service/backends...` and strips the service
segment itself (zcli:Lib.pm `zapi`), so the server sees only the farm-level paths.
"""

from __future__ import annotations

from typing import Any

from app.api.deps import BackendsDep, FarmsDep
from app.api.http import ZapiResponse
from app.api.v40.base import Body40, documented40, new_router
from app.api.v40.present import (
    backend_item40,
    priority_warning,
)
from app.db import repositories as repo
from app.errors import BadRequest, NotFound
from app.schemas.v40 import (
    BackendCreate40,
    BackendModify40,
    Maintenance40,
    MaintenanceUp40,
    check_params,
)
from app.schemas.views import FarmView
from app.services.farms import FarmService

router = new_router("v4.0 backends")
NO_BACKEND = "Could not find a backend with such id."


def _farm(farms: FarmService, name: str, description: str) -> FarmView:
    return farms.get(name, description=description)


def _backend_exists(view: FarmView, backend_id: int, description: str) -> None:
    if repo.get_backend(view.farm, backend_id) is None:
        raise NotFound(NO_BACKEND, description=description)


def _warned(body: dict[str, Any], farms: FarmService, name: str) -> dict[str, Any]:
    view = farms.get(name, description="")
    warning = priority_warning([b.priority for b in view.farm.backends])
    if warning is not None:
        body["warning"] = warning
    return body


def _sent(checked: Any) -> dict[str, Any]:
    """The fields the client sent, as the v3.1 services take them."""
    return dict(checked.model_dump(exclude_unset=True))


@router.get(
    "/farms/{name}/backends",
    operation_id="v40ListBackends",
    **documented40("BackendListResponse"),
)
def list_backends(name: str, farms: FarmsDep) -> dict[str, Any]:
    """List a farm's backends."""
    view = _farm(farms, name, "List backends")
    return {
        "description": "List backends",
        "params": [backend_item40(b, view.backend_status(b)) for b in view.farm.backends],
    }


@router.post(
    "/farms/{name}/backends",
    operation_id="v40CreateBackend",
    status_code=201,
    **documented40("BackendCreated40Response", status=201, body=BackendCreate40, errors=(400, 404)),
)
def create_backend(name: str, body: Body40, farms: FarmsDep, backends: BackendsDep) -> ZapiResponse:
    """Add a backend (its id is the lowest free one); IPv4 or IPv6 like the farm's VIP."""
    description = "New farm backend"
    _farm(farms, name, description)
    checked = check_params(BackendCreate40, body, description=description)
    params, status = backends.add(name, _sent(checked))
    view = farms.get(name, description=description)
    stored = repo.get_backend(view.farm, int(params["id"]))
    assert stored is not None
    answer = {
        "description": description,
        "message": "Backend added.",
        "params": backend_item40(stored, view.backend_status(stored)),
        "status": status,
    }
    return ZapiResponse(_warned(answer, farms, name), 201)


@router.put(
    "/farms/{name}/backends/{backend_id:int}",
    operation_id="v40ModifyBackend",
    **documented40("BackendModified40Response", body=BackendModify40, errors=(400, 404)),
)
def modify_backend(
    name: str, backend_id: int, body: Body40, farms: FarmsDep, backends: BackendsDep
) -> dict[str, Any]:
    """Modify a backend."""
    description = "Modify backend"
    _backend_exists(_farm(farms, name, description), backend_id, description)
    checked = check_params(BackendModify40, body, description=description)
    changes = _sent(checked)
    changes.pop("interface", None)  # a datalink leftover: accepted, echoed, no effect on l4
    if changes:
        _echo, status = backends.modify(name, backend_id, changes)
    else:
        status = farms.get(name, description=description).status
    answer = {
        "description": description,
        "message": "Backend modified.",
        "params": body,
        "status": status,
    }
    return _warned(answer, farms, name) if "priority" in body else answer


@router.delete(
    "/farms/{name}/backends/{backend_id:int}",
    operation_id="v40DeleteBackend",
    **documented40("BackendDeleted40Response", errors=(400, 404)),
)
def delete_backend(name: str, backend_id: int, backends: BackendsDep, farms: FarmsDep) -> Any:
    """Delete a backend and cut its connections."""
    status = backends.delete(name, backend_id)
    answer = {
        "description": "Delete backend",
        "message": "Backend removed",
        "status": status,
        "success": "true",
    }
    return _warned(answer, farms, name)


@router.put(
    "/farms/{name}/backends/{backend_id:int}/maintenance",
    operation_id="v40SetBackendMaintenance",
    **documented40("Maintenance40Response", body=Maintenance40, errors=(400, 404)),
)
def set_maintenance(
    name: str, backend_id: int, body: Body40, farms: FarmsDep, backends: BackendsDep
) -> dict[str, Any]:
    """Put a backend into maintenance (`mode` drain or cut) or back up."""
    description = "Set backend status"
    view = _farm(farms, name, description)
    if view.farm.profile != "l4xnat":
        raise NotFound("Only L4xNAT farm profile supports this feature.", description=description)
    _backend_exists(view, backend_id, description)
    # `mode` belongs to the maintenance action only; with `up` it is an unknown key.
    model = (
        Maintenance40
        if body.get("action") in (None, "maintenance") or not body
        else MaintenanceUp40
    )
    checked = check_params(model, body, description=description)
    request: dict[str, Any] = {"action": checked.action}
    mode = getattr(checked, "mode", None)
    if mode is not None:
        request["mode"] = mode
    try:
        action, status = backends.maintenance(name, backend_id, request)
    except BadRequest as exc:
        exc.description = description
        raise
    return {
        "description": description,
        "params": {
            "action": action,
            "farm": {"status": status},
            "message": f"The action {action} has been performed in farm {name}.",
        },
    }
