"""ZAPI v4.0 stats (zapi40-l4.md §5): farms as in 3.1, one farm with `sessions` and filtered
backends; `/stats` and `/stats/system/network` as in 3.1.  The EE-only paths
(`/stats/system/{memory,load,cpu,connections}`, `/stats/system/network/interfaces`,
`/stats/farms/{total,modules}`) fall through to 404 "Request not found", as in CE."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.api.http import zapi_path
from app.api.stats import FarmStatsDep, SystemDep, _refuse_pseudo_names, network_stats_body
from app.api.v40.base import documented40, new_router
from app.api.v40.present import (
    farm_stats40,
)
from app.schemas.stats import farm_stats_item, system_stats_params

router = new_router("v4.0 stats")
FARM_ERRORS = {
    400: "The farm does not exist (answered 400, as the original does)",
    404: "Request not found (modules, total)",
}


@router.get(
    "/stats/farms",
    operation_id="v40ListFarmStats",
    **documented40("FarmStatsListResponse", errors=()),
)
def list_farm_stats(stats: FarmStatsDep) -> dict[str, Any]:
    """Established and pending connections of every farm (0/0 for a stopped farm)."""
    return {
        "description": "List all farms stats",
        "farms": [farm_stats_item(farm) for farm in stats.farms()],
    }


@router.get(
    "/stats/farms/{name}",
    operation_id="v40GetFarmStats",
    **documented40("FarmStats40Response", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_stats(name: str, request: Request, stats: FarmStatsDep) -> dict[str, Any]:
    """Connections of each backend of a farm (nothing for a stopped farm)."""
    _refuse_pseudo_names(name, request)
    return farm_stats40(stats.farm(name, path=zapi_path(request.url.path)))


@router.get(
    "/stats/farms/{name}/backends",
    operation_id="v40GetFarmBackendStats",
    **documented40("FarmStats40Response", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_backend_stats(name: str, request: Request, stats: FarmStatsDep) -> dict[str, Any]:
    """The same as `GET /stats/farms/NAME`."""
    _refuse_pseudo_names(name, request)
    return farm_stats40(stats.farm(name, path=zapi_path(request.url.path)))


@router.get(
    "/stats", operation_id="v40GetSystemStats", **documented40("SystemStatsResponse", errors=())
)
def get_system_stats(system: SystemDep) -> dict[str, Any]:
    """Memory (MB), load, CPU (%) and traffic per interface (MB) of the host."""
    return {"description": "System stats", "params": system_stats_params(system.snapshot())}


@router.get(
    "/stats/system/network",
    operation_id="v40GetNetworkStats",
    **documented40("NetworkUsageResponse", errors=()),
)
def get_network_stats(system: SystemDep) -> dict[str, Any]:
    """Traffic received and sent per interface since boot (MB, as strings)."""
    return network_stats_body(system)
