"""ZAPI v3.1 response bodies, in the JSON types real clients decode (zapi31.md section 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.db.models import Backend, Farm
from app.domain.rules import parse_vport
from app.schemas.fg import fg_extensions_set
from app.schemas.views import FarmSummary, FarmView


def vport_detail(vport: str) -> int | str:
    """`GET /farms/NAME`: an integer for one single port, the multiport text otherwise."""
    ports = parse_vport(vport)
    if ports is not None and len(ports) == 1 and ports[0].is_single:
        return ports[0].first
    return vport


def backend_item(backend: Backend, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": backend.zapi_id,
        "ip": backend.ip,
        "port": backend.port,
        "weight": backend.weight,
        "priority": backend.priority,
        "max_conns": backend.max_conns,
        "status": status,
    }
    if backend.source_addr:  # kernlb extension: shown only when set
        item["source_addr"] = backend.source_addr
    return item


def farm_list_item(item: FarmSummary) -> dict[str, Any]:
    return {
        "farmname": item.name,
        "profile": item.profile,
        "status": item.status,
        "vip": item.vip,
        "vport": item.vport,
    }


def l4xnat_params(view: FarmView, **own: Any) -> dict[str, Any]:
    """An l4xnat farm's `params` in `GET /farms/NAME`: the fields v3.1 and v4.0 share plus each
    version's `own`, in key order, then the kernlb extension `source_addr` when set."""
    farm: Farm = view.farm
    shared: dict[str, Any] = {
        "algorithm": farm.algorithm,
        "listener": "l4xnat",
        "nattype": farm.nattype,
        "persistence": farm.persistence,
        "protocol": farm.protocol,
        "status": view.status,
        "ttl": farm.ttl,
        "vip": farm.vip,
        "vport": vport_detail(farm.vport),
    }
    params = dict(sorted({**shared, **own}.items()))
    if farm.source_addr:
        params["source_addr"] = farm.source_addr
    return params


def farm_params(view: FarmView) -> dict[str, Any]:
    farm: Farm = view.farm
    params = l4xnat_params(
        view,
        fgenabled="true" if farm.fg_enabled else "false",
        fglog="true" if farm.fg_log else "false",
        fgscript=farm.fg_script,
        fgtimecheck=farm.fg_timecheck,
    )
    params.update(fg_extensions_set(farm))  # kernlb extensions: shown only when set
    return params


def farm_detail(
    view: FarmView,
    *,
    params: Callable[[FarmView], dict[str, Any]] = farm_params,
    item: Callable[[Backend, str], dict[str, Any]] = backend_item,
) -> dict[str, Any]:
    """`GET /farms/NAME` (v4.0 passes its own `params` and backend `item`)."""
    return {
        "description": f"List farm {view.farm.name}",
        "params": params(view),
        "backends": [item(b, view.backend_status(b)) for b in view.farm.backends],
    }
