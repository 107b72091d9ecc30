"""ZAPI v4.0 farmguardian objects (`/monitoring/fg`) and their links to farms (zapi40-l4.md §4).

`PUT /farms/NAME/fg` (v3.1) is gone from 4.0: the catch-all answers it "Request not found".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.deps import FarmsDep
from app.api.v40.base import Body40, documented40, new_router
from app.api.v40.present import (
    fg_object,
)
from app.errors import NotFound
from app.schemas.v40 import FgAttach40, FgCreate40, FgModify40, check_params
from app.services.fg_objects import FgObjectService

router = new_router("v4.0 farmguardian")


def _fg_objects(request: Request) -> FgObjectService:
    service: FgObjectService = request.app.state.fg_objects
    return service


FgDep = Annotated[FgObjectService, Depends(_fg_objects)]


@router.get(
    "/monitoring/fg",
    operation_id="v40ListFarmGuardians",
    **documented40("FgListResponse", errors=()),
)
def list_fg(fg: FgDep) -> dict[str, Any]:
    """Every farmguardian: stored ones (v3.1's `_default_FARM` too), then the templates."""
    return {
        "description": "List farm guardian checks and templates",
        "params": [fg_object(view) for view in fg.list()],
    }


@router.get(
    "/monitoring/fg/{name}", operation_id="v40GetFarmGuardian", **documented40("FgResponse")
)
def get_fg(name: str, fg: FgDep) -> dict[str, Any]:
    """One farmguardian."""
    description = f"Retrive the farm guardian '{name}'"
    view = fg.get(name)
    if view is None:
        raise NotFound(f"The farm guardian '{name}' has not been found.", description=description)
    return {"description": description, "params": fg_object(view)}


@router.post(
    "/monitoring/fg",
    operation_id="v40CreateFarmGuardian",
    **documented40("FgChangedResponse", body=FgCreate40, errors=(400,)),
)
def create_fg(body: Body40, fg: FgDep) -> dict[str, Any]:
    """Create a farmguardian: blank, or a copy of a template or another one (200, as the
    original answers)."""
    name = body.get("name")
    description = f"Create a farm guardian '{name if isinstance(name, str) else ''}'"
    checked = check_params(FgCreate40, body, description=description)
    view = fg.create(checked.name, checked.copy_from, description=description)
    return {
        "description": description,
        "message": f"The farm guardian '{checked.name}' has been created successfully.",
        "params": fg_object(view),
    }


@router.put(
    "/monitoring/fg/{name}",
    operation_id="v40ModifyFarmGuardian",
    **documented40("FgChangedResponse", body=FgModify40, errors=(400,)),
)
def modify_fg(name: str, body: Body40, fg: FgDep) -> dict[str, Any]:
    """Modify a farmguardian; the farms it is linked to take the change at once."""
    description = f"Modify farm guardian '{name}'"
    if fg.get(name) is None:
        from app.errors import BadRequest

        raise BadRequest(f"The farm guardian '{name}' does not exist.", description=description)
    checked = check_params(FgModify40, body, description=description)
    changes: dict[str, Any] = {}
    for key in ("description", "command"):
        value = getattr(checked, key)
        if value is not None:
            changes[key] = value
    for key in ("interval", "timeout"):
        value = getattr(checked, key)
        if value is not None:
            changes[key] = int(value)
    for key in ("log", "cut_conns", "backend_alias"):
        value = getattr(checked, key)
        if value is not None:
            changes[key] = value == "true"
    view = fg.modify(name, changes, force="force" in body)
    return {
        "description": description,
        "message": f"Success, some parameters have been changed in farm guardian '{name}'.",
        "params": fg_object(view),
    }


@router.delete(
    "/monitoring/fg/{name}",
    operation_id="v40DeleteFarmGuardian",
    **documented40("FgDeletedResponse", errors=(400, 404)),
)
def delete_fg(name: str, fg: FgDep) -> dict[str, Any]:
    """Delete a farmguardian; stopped farms that use it lose their check."""
    fg.delete(name)
    return {
        "description": f"Delete the farm guardian '{name}'",
        "message": f"{name} has been deleted successfully.",
        "success": "true",
    }


@router.post(
    "/farms/{farm}/fg",
    operation_id="v40AttachFarmGuardian",
    **documented40("FgLinkResponse", body=FgAttach40, errors=(400, 404)),
)
def attach_fg(farm: str, body: Body40, fg: FgDep, farms: FarmsDep) -> dict[str, Any]:
    """Link a farmguardian to a farm: its check starts on the farm's backends."""
    name = body.get("name")
    description = f"Add the farm guardian '{name}' to the 'farm '{farm}''"
    farms.get(farm, description=description, message=f"The farm '{farm}' does not exist")
    checked = check_params(FgAttach40, body, description=description)
    status = fg.attach(farm, checked.name)
    return {
        "description": description,
        "message": f"Success, The farm guardian '{checked.name}' was added to the 'farm '{farm}''",
        "status": status,
    }


@router.delete(
    "/farms/{farm}/fg/{name}",
    operation_id="v40DetachFarmGuardian",
    **documented40("FgLinkResponse", errors=(400, 404)),
)
def detach_fg(farm: str, name: str, fg: FgDep) -> dict[str, Any]:
    """Unlink a farmguardian: the backends it had taken down come back up."""
    status = fg.detach(farm, name)
    return {
        "description": f"Remove the farm guardian '{name}' from the 'farm '{farm}''",
        "message": f"Success, '{name}' was removed from the 'farm '{farm}''",
        "status": status,
    }
