"""Stats: connections per farm and backend (conntrack), and host figures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.docs import documented
from app.api.http import ZapiResponse, zapi_path
from app.api.http_farms import HttpFarmsDep, http_farm_stats
from app.errors import NotFound
from app.schemas.stats import (
    farm_stats_body,
    farm_stats_item,
    interface_usage,
    system_stats_params,
)
from app.stats.farms import FarmStatsService
from app.stats.system import SystemProbe

router = APIRouter(tags=["stats"], default_response_class=ZapiResponse)
FARM_ERRORS = {
    400: "The farm does not exist (the stats endpoints answer 400, as the original did), "
    "or it has no services",
    404: "Request not found: no stats for this path (datalink farms, modules, total)",
}
# Paths the original answered with "Request not found" although they look like farm names.
NOT_FARMS = ("modules", "total")


def _farm_stats(request: Request) -> FarmStatsService:
    service: FarmStatsService = request.app.state.farm_stats
    return service


def _system(request: Request) -> SystemProbe:
    probe: SystemProbe = request.app.state.system
    return probe


FarmStatsDep = Annotated[FarmStatsService, Depends(_farm_stats)]
SystemDep = Annotated[SystemProbe, Depends(_system)]


def _refuse_pseudo_names(name: str, request: Request) -> None:
    if name in NOT_FARMS:
        path = zapi_path(request.url.path)
        raise NotFound(f"Request not found: {path}", description="Request not found")


@router.get(
    "/stats/farms",
    operation_id="listFarmStats",
    **documented("FarmStatsListResponse", errors=()),
)
def list_farm_stats(stats: FarmStatsDep, http: HttpFarmsDep) -> dict[str, Any]:
    """Established and pending connections of every farm (0/0 for a stopped farm)."""
    http_items = []
    for view in http.list():
        detail = http_farm_stats(http, view.farm.name)
        http_items.append(
            {
                "farmname": view.farm.name,
                "profile": view.farm.listener,
                "status": view.status,
                "vip": view.farm.vip,
                "vport": str(view.farm.vport),
                "established": sum(b["established"] for b in detail["backends"]),
                "pending": sum(b["pending"] for b in detail["backends"]),
            }
        )
    return {
        "description": "List all farms stats",
        "farms": http_items + [farm_stats_item(farm) for farm in stats.farms()],
    }


@router.get(
    "/stats/farms/{name}",
    operation_id="getFarmStats",
    **documented("FarmStatsResponse", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_stats(
    name: str, request: Request, stats: FarmStatsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Established and pending connections of each backend of a farm; `ipds` (extension,
    only for farms with IPDS rules): packets and bytes each list and DoS rule dropped."""
    _refuse_pseudo_names(name, request)
    if http.exists(name):
        return http_farm_stats(http, name)
    return _with_ipds(
        farm_stats_body(stats.farm(name, path=zapi_path(request.url.path))), name, request
    )


@router.get(
    "/stats/farms/{name}/backends",
    operation_id="getFarmBackendStats",
    **documented("FarmStatsResponse", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_backend_stats(
    name: str, request: Request, stats: FarmStatsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """The same as `GET /stats/farms/NAME`."""
    _refuse_pseudo_names(name, request)
    if http.exists(name):
        return http_farm_stats(http, name)
    return _with_ipds(
        farm_stats_body(stats.farm(name, path=zapi_path(request.url.path))), name, request
    )


@router.get(
    "/stats/farms/{name}/service/{service}/backends",
    operation_id="getFarmServiceStats",
    **documented("FarmStatsResponse", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_service_stats(
    name: str, service: str, request: Request, stats: FarmStatsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """Per-service stats of http farms (l4xnat farms have no services: 400)."""
    _refuse_pseudo_names(name, request)
    if http.exists(name):
        return http_farm_stats(http, name, service)
    return farm_stats_body(stats.farm(name, path=zapi_path(request.url.path), service=service))


@router.get(
    "/stats/farms/{name}/services/{service}/backends",
    operation_id="getFarmServicesStats",
    **documented("FarmStatsResponse", errors=(400, 404), texts=FARM_ERRORS),
)
def get_farm_services_stats(
    name: str, service: str, request: Request, stats: FarmStatsDep, http: HttpFarmsDep
) -> dict[str, Any]:
    """The other spelling of `/stats/farms/NAME/service/SVC/backends`."""
    _refuse_pseudo_names(name, request)
    if http.exists(name):
        return http_farm_stats(http, name, service)
    return farm_stats_body(stats.farm(name, path=zapi_path(request.url.path), service=service))


@router.get("/stats", operation_id="getSystemStats", **documented("SystemStatsResponse", errors=()))
def get_system_stats(system: SystemDep) -> dict[str, Any]:
    """Memory (MB), load, CPU (%) and traffic per interface (MB) of the host."""
    return {"description": "System stats", "params": system_stats_params(system.snapshot())}


@router.get(
    "/stats/system/network",
    operation_id="getNetworkStats",
    **documented("NetworkUsageResponse", errors=()),
)
def get_network_stats(system: SystemDep) -> dict[str, Any]:
    """Traffic received and sent per interface since boot (MB, as strings)."""
    return network_stats_body(system)


def network_stats_body(system: SystemDep) -> dict[str, Any]:
    """The network usage answer, the same under v3.1 and v4.0."""
    snapshot = system.network()
    return {
        "description": "Network interefaces usage",
        "params": {
            "date": snapshot.date,
            "hostname": snapshot.hostname,
            "interfaces": [interface_usage(item) for item in snapshot.interfaces],
        },
    }


def _with_ipds(body: dict[str, Any], name: str, request: Request) -> dict[str, Any]:
    counters = request.app.state.ipds.farm_drop_counters(name)
    if counters:
        body["ipds"] = counters
    return body
