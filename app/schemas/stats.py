"""`/stats*` bodies in ZAPI's spellings and JSON types (reference §8, zapi31.md section 3)."""

from __future__ import annotations

from typing import Any

from app.schemas.views import (
    CPU_FIELDS,
    BackendStats,
    FarmStats,
    InterfaceTraffic,
    SystemSnapshot,
)

MEMORY_FIELDS = ("MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree", "SwapCached")


def _mb(value: float) -> float:
    return round(value / 1024, 2)


def farm_stats_item(farm: FarmStats) -> dict[str, Any]:
    """One item of `GET /stats/farms`: integer counts, `vport` always a string."""
    return {
        "established": farm.established,
        "farmname": farm.name,
        "pending": farm.pending,
        "profile": farm.profile,
        "status": farm.status,
        "vip": farm.vip,
        "vport": farm.vport,
    }


def backend_stats_item(backend: BackendStats) -> dict[str, Any]:
    """One item of `GET /stats/farms/NAME`: no `service` key, integer `id`/`port`/counts."""
    return {
        "established": backend.established,
        "id": backend.id,
        "ip": backend.ip,
        "max_conns": backend.max_conns,
        "pending": backend.pending,
        "port": backend.port,
        "priority": backend.priority,
        "status": backend.status,
        "weight": backend.weight,
    }


def farm_stats_body(farm: FarmStats) -> dict[str, Any]:
    return {
        "backends": [backend_stats_item(b) for b in farm.backends],
        "description": "Get farm stats",
    }


def system_stats_params(snapshot: SystemSnapshot) -> dict[str, Any]:
    """`params` of `GET /stats`: every figure a JSON number (memory in MB, CPU in %)."""
    mem = snapshot.meminfo_kb
    memory = {name: _mb(mem.get(name, 0)) for name in MEMORY_FIELDS}
    memory["MemUsed"] = _mb(mem.get("MemTotal", 0) - mem.get("MemFree", 0))
    memory["SwapUsed"] = _mb(mem.get("SwapTotal", 0) - mem.get("SwapFree", 0))
    cpu: dict[str, float | int] = {
        name: round(snapshot.cpu_percent.get(name, 0.0), 2) for name in (*CPU_FIELDS, "usage")
    }
    cpu["cores"] = snapshot.cores
    network: dict[str, float] = {}
    for item in snapshot.interfaces:
        # The original doubled the direction in these keys ("eth0 in in"); monitoring
        # plugins written against it look them up that way.
        network[f"{item.name} in in"] = _mb(item.rx_bytes / 1024)
        network[f"{item.name} out out"] = _mb(item.tx_bytes / 1024)
    last_1, last_5, last_15 = snapshot.load
    return {
        "cpu": cpu,
        "date": snapshot.date,
        "hostname": snapshot.hostname,
        "load": {"Last_1": last_1, "Last_5": last_5, "Last_15": last_15},
        "memory": memory,
        "network": network,
    }


def interface_usage(item: InterfaceTraffic) -> dict[str, str]:
    """One item of `/stats/system/network`: MB as strings with two decimals, as the original."""
    return {
        "in": f"{item.rx_bytes / 1024 / 1024:.2f}",
        "interface": item.name,
        "out": f"{item.tx_bytes / 1024 / 1024:.2f}",
    }
