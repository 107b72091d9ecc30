"""ZAPI v4.0 farms: list, show, status, modules, create (with copy_from), modify, delete,
actions (zapi40-l4.md §3)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.deps import FarmsDep
from app.api.http import ZapiResponse
from app.api.v40.base import Body40, documented40, new_router
from app.api.v40.present import (
    farm_detail40,
)
from app.domain.rules import PortSpecError, parse_vport
from app.domain.values import as_ip, ip_family
from app.errors import BadRequest, Gone, NotFound
from app.schemas.v40 import FarmAction40, FarmCreate40, FarmModify40, check_params
from app.schemas.zapi import farm_list_item
from app.services.farm_copy import copy_farm
from app.services.farms import FarmService

router = new_router("v4.0 farms")
REMOVED_PROTOCOLS = ("amanda", "irc", "netbios-ns", "sane")


def host_addresses(request: Request) -> list[str]:
    """The addresses a VIP may take (4.0 fills the `vip` model's values with them)."""
    links = request.app.state.interfaces.links
    return sorted({a.ip for a in links.addresses()})


def vip_accepts(farms: FarmService) -> Any:
    def accepts(text: str) -> bool:
        ip = as_ip(text)
        return ip is not None and farms.addresses.interface_of(ip) is not None

    return accepts


def check_range(vport: Any, description: str) -> None:
    """4.0's new check: a range A:B needs A <= B."""
    if not isinstance(vport, str | int) or isinstance(vport, bool):
        return
    for part in str(vport).split(","):
        if ":" in part:
            low, _, high = part.partition(":")
            if low.isdigit() and high.isdigit() and int(low) > int(high):
                raise BadRequest(
                    f"Range {part} in virtual port is not a valid value.", description=description
                )


@router.get("/farms", operation_id="v40ListFarms", **documented40("FarmListResponse", errors=()))
def list_farms(farms: FarmsDep) -> dict[str, Any]:
    """List every farm (as in 3.1)."""
    return {"description": "List farms", "params": [farm_list_item(v) for v in farms.summaries()]}


@router.get(
    "/farms/modules/lslb",
    operation_id="v40ListLslbFarms",
    **documented40("FarmListResponse", errors=()),
)
def list_lslb_farms(farms: FarmsDep) -> dict[str, Any]:
    """List the LSLB farms (every kernlb farm is l4xnat)."""
    return {
        "description": "List LSLB farms",
        "params": [farm_list_item(v) for v in farms.summaries()],
    }


@router.get(
    "/farms/modules/dslb",
    operation_id="v40ListDslbFarms",
    **documented40("FarmListResponse", errors=()),
)
def list_dslb_farms() -> dict[str, Any]:
    """List the DSLB (datalink) farms: kernlb has none."""
    return {"description": "List DSLB farms", "params": []}


@router.get(
    "/farms/modules/summary",
    operation_id="v40FarmModulesSummary",
    **documented40("ModulesSummaryResponse", errors=()),
)
def modules_summary(farms: FarmsDep) -> dict[str, Any]:
    """Every farm's name and profile, by module."""
    lslb = [{"name": v.name, "profile": v.profile} for v in farms.summaries()]
    return {
        "description": "Farm Modules summary",
        "params": {"lslb": lslb, "gslb": [], "dslb": []},
    }


@router.get("/farms/{name}", operation_id="v40GetFarm", **documented40("Farm40Response"))
def get_farm(name: str, farms: FarmsDep) -> dict[str, Any]:
    """Show one farm with its backends and its farmguardian."""
    return farm_detail40(
        farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    )


@router.get(
    "/farms/{name}/summary", operation_id="v40GetFarmSummary", **documented40("Farm40Response")
)
def get_farm_summary(name: str, farms: FarmsDep) -> dict[str, Any]:
    """Show one farm (for l4xnat the same as the full view)."""
    return farm_detail40(
        farms.get(name, description=f"Show farm {name}", message="Farm not found.")
    )


@router.get(
    "/farms/{name}/status", operation_id="v40GetFarmStatus", **documented40("FarmStatus40Response")
)
def get_farm_status(name: str, farms: FarmsDep) -> dict[str, Any]:
    """A farm's status only."""
    view = farms.get(name, description=f"Show farm {name} status", message="Farm not found.")
    return {"description": f"Show farm {name} status", "params": {"status": view.status}}


@router.post(
    "/farms",
    operation_id="v40CreateFarm",
    status_code=201,
    **documented40("FarmCreated40Response", status=201, body=FarmCreate40, errors=(400, 404)),
)
def create_farm(request: Request, body: Body40, farms: FarmsDep) -> ZapiResponse:
    """Create an l4xnat farm, or copy one (`copy_from`: settings, backends, farmguardian)."""
    description = "Creating a farm"
    name = body.get("farmname")
    if isinstance(name, str) and name:
        try:
            farms.get(name, description=description)
        except NotFound:
            pass
        else:
            raise BadRequest(
                "Error trying to create a new farm, the farm name already exists.",
                description=description,
            )
    source = body.get("copy_from")
    if isinstance(source, str) and source:
        try:
            farms.get(source, description=description)
        except NotFound:
            raise NotFound(
                f"The farm '{source}' does not exist.", description=description
            ) from None
        profile = body.get("profile")
        if profile is not None and profile != "l4xnat":
            raise BadRequest(
                f"The profile '{profile}' does not match with the profile 'l4xnat' of the "
                f"farm '{source}'.",
                description=description,
            )
        body = {**body, "profile": "l4xnat"}
    checked = check_params(
        FarmCreate40,
        body,
        description=description,
        values={"vip": host_addresses(request)},
        accepts={"vip": vip_accepts(farms)},
    )
    check_range(checked.vport, description)
    create = {
        "farmname": checked.farmname,
        "profile": checked.profile,
        "vip": checked.vip,
        "vport": checked.vport,
    }
    try:
        if checked.copy_from:
            view, interface = copy_farm(farms, checked.copy_from, create, description=description)
        else:
            view, interface, _profile = farms.create(create)
    except BadRequest as exc:
        exc.description = description
        raise
    params = {**body, "interface": interface}
    return ZapiResponse(
        {
            "description": description,
            "message": f"The farm {view.farm.name} has been created successfully.",
            "params": params,
        },
        201,
    )


@router.put(
    "/farms/{name}",
    operation_id="v40ModifyFarm",
    **documented40(
        "FarmModified40Response",
        body=FarmModify40,
        errors=(400, 404, 410),
    ),
)
def modify_farm(request: Request, name: str, body: Body40, farms: FarmsDep) -> dict[str, Any]:
    """Modify a farm: every field applies, or none."""
    description = f"Modify L4xNAT farm '{name}'"
    view = farms.get(name, description="Modify farm")
    if body.get("algorithm") == "prio":
        raise Gone("'Prio' algorithm is not supported anymore.", description=description)
    body = dict(body)
    if body.get("protocol") == "all" or body.get("vport") == "*":
        body["protocol"], body["vport"] = "all", "*"
    if body.get("persistence") == "none":
        body["persistence"] = ""
    if body.get("protocol") in REMOVED_PROTOCOLS:
        raise Gone(
            f"'{body['protocol']}' protocol is not supported anymore.", description=description
        )
    checked = check_params(
        FarmModify40,
        body,
        description=description,
        values={"vip": host_addresses(request)},
        accepts={"vip": vip_accepts(farms)},
    )
    if checked.vport is not None and checked.vport != "*":
        protocol = checked.protocol or view.farm.protocol
        if protocol == "all":
            raise BadRequest(
                f"Port can not be '{checked.vport}' with protocol 'all'", description=description
            )
        check_range(checked.vport, description)
        try:
            parse_vport(str(checked.vport))
        except PortSpecError:
            raise BadRequest(
                "The virtual port must be an acceptable value and must be available.",
                description=description,
            ) from None
    if checked.vip is not None and view.farm.backends:
        vip = as_ip(checked.vip)
        if vip is not None and ip_family(vip) != ip_family(view.farm.backends[0].ip):
            raise BadRequest(
                "Invalid VIP address, VIP and backends can't be from diferent IP version.",
                description=description,
            )
    echo = farms.modify(name, body)
    new_name = checked.newfarmname or name
    return {
        "description": description,
        "message": f"Some parameters have been changed in farm {new_name}.",
        "params": echo,
    }


@router.delete(
    "/farms/{name}",
    operation_id="v40DeleteFarm",
    **documented40("DeletedResponse", errors=(400, 404)),
)
def delete_farm(name: str, farms: FarmsDep) -> dict[str, Any]:
    """Delete a farm and every kernel object of it (its farmguardian link goes with it)."""
    farms.delete(name)
    return {
        "description": f"Delete farm {name}",
        "message": f"The Farm {name} has been deleted.",
        "success": "true",
    }


@router.put(
    "/farms/{name}/actions",
    operation_id="v40FarmAction",
    **documented40("FarmAction40Response", body=FarmAction40, errors=(400, 404)),
)
def farm_action(name: str, body: Body40, farms: FarmsDep) -> dict[str, Any]:
    """Start, stop or restart a farm."""
    description = "Farm actions"
    farms.get(name, description=description)
    checked = check_params(FarmAction40, body, description=description)
    action, status = farms.action(name, {"action": checked.action})
    return {
        "description": f"Set a new action in {name}",
        "message": f"The action {action} has been performed in farm {name}.",
        "params": {"action": action, "status": status},
    }
