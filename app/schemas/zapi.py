"""ZAPI v3.1 response bodies, in the JSON types real clients decode (zapi31.md section 1)."""

from __future__ import annotations

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


def farm_params(view: FarmView) -> dict[str, Any]:
    farm: Farm = view.farm
    params = {
        "algorithm": farm.algorithm,
        "fgenabled": "true" if farm.fg_enabled else "false",
        "fglog": "true" if farm.fg_log else "false",
        "fgscript": farm.fg_script,
        "fgtimecheck": farm.fg_timecheck,
        "listener": "l4xnat",
        "nattype": farm.nattype,
        "persistence": farm.persistence,
        "protocol": farm.protocol,
        "status": view.status,
        "ttl": farm.ttl,
        "vip": farm.vip,
        "vport": vport_detail(farm.vport),
    }
    if farm.source_addr:  # kernlb extension: shown only when set
        params["source_addr"] = farm.source_addr
    params.update(fg_extensions_set(farm))  # kernlb extensions: shown only when set
    return params


def farm_detail(view: FarmView) -> dict[str, Any]:
    return {
        "description": f"List farm {view.farm.name}",
        "params": farm_params(view),
        "backends": [backend_item(b, view.backend_status(b)) for b in view.farm.backends],
    }
