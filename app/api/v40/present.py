"""ZAPI v4.0 bodies from the services' views (zapi40-l4.md §3 to §5).

Where 4.0 keeps a 3.1 shape, the 3.1 presenter (app/schemas/zapi.py) is reused; the differences
are here: `farmguardian` and `sessions` instead of the `fg*` fields, `undefined` shown as `up`,
and the stats' filtered backends.
"""

from __future__ import annotations

from typing import Any

from app.db.models import Backend
from app.schemas.views import FarmStats, FarmView, FgView
from app.schemas.zapi import backend_item, farm_detail, l4xnat_params


def status40(status: str) -> str:
    """4.0 shows `fgDOWN` as `down` (kernlb's `down` already) and `undefined` as `up`."""
    return "up" if status.lower() == "undefined" else status


def backend_item40(backend: Backend, status: str) -> dict[str, Any]:
    item = backend_item(backend, status)
    item["status"] = status40(item["status"])
    return item


def farm_params40(view: FarmView) -> dict[str, Any]:
    # Persistence entries live in the kernel's nftables sets; kernlb does not list them.
    return l4xnat_params(view, farmguardian=view.farm.fg_name, sessions=[])


def farm_detail40(view: FarmView) -> dict[str, Any]:
    return farm_detail(view, params=farm_params40, item=backend_item40)


def priority_warning(priorities: list[int]) -> str | None:
    """Zevenet's warning: a priority no failure of better backends can ever reach."""
    ordered = sorted(priorities)
    for value in sorted(set(ordered)):
        lower = sum(1 for p in ordered if p < value)
        if value > 1 + lower:
            return f"Backends with high priority value ({value}) will not be used."
    return None


def fg_object(view: FgView) -> dict[str, Any]:
    def flag(value: bool) -> str:
        return "true" if value else "false"

    return {
        "backend_alias": flag(view.backend_alias),
        "command": view.command,
        "cut_conns": flag(view.cut_conns),
        "description": view.description,
        "farms": list(view.farms),
        "interval": view.interval,
        "log": flag(view.log),
        "name": view.name,
        "template": flag(view.template),
        "timeout": view.timeout,
    }


def farm_stats40(stats: FarmStats) -> dict[str, Any]:
    """`GET /stats/farms/NAME` in 4.0: a down farm has nothing; backends are filtered."""
    backends = []
    if stats.status != "down":
        backends = [
            {
                "established": b.established,
                "id": b.id,
                "ip": b.ip,
                "max_conns": b.max_conns,
                "pending": b.pending,
                "port": b.port,
                "priority": b.priority,
                "status": status40(b.status),
                "weight": b.weight,
            }
            for b in stats.backends
        ]
    return {
        "backends": backends,
        "description": "Get farm stats",
        "sessions": [],
        "total_sessions": 0,
    }
