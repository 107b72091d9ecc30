"""Farmguardian bodies: the v3.1 `fg*` fields, kernlb's extensions, and recorded health."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from app.db.models import Backend, Farm
from app.schemas.views import FarmView

EXTENSION_DEFAULTS: dict[str, Any] = {
    "fgtimeout": 0,
    "fgrise": 1,
    "fgfall": 1,
    "fgcutconns": "false",
}


class FarmGuardianColumns(Protocol):
    """What carries a farmguardian: an l4xnat farm, or a service of an http farm."""

    @property
    def fg_enabled(self) -> bool: ...

    @property
    def fg_log(self) -> bool: ...

    @property
    def fg_script(self) -> str: ...

    @property
    def fg_timecheck(self) -> int: ...

    @property
    def fg_timeout(self) -> int: ...

    @property
    def fg_rise(self) -> int: ...

    @property
    def fg_fall(self) -> int: ...

    @property
    def fg_cut_conns(self) -> bool: ...


def fg_params(farm: FarmGuardianColumns) -> dict[str, Any]:
    """Every farmguardian field of a farm, in ZAPI spellings and JSON types."""
    return {
        "fgenabled": "true" if farm.fg_enabled else "false",
        "fglog": "true" if farm.fg_log else "false",
        "fgscript": farm.fg_script,
        "fgtimecheck": farm.fg_timecheck,
        "fgtimeout": farm.fg_timeout,
        "fgrise": farm.fg_rise,
        "fgfall": farm.fg_fall,
        "fgcutconns": "true" if farm.fg_cut_conns else "false",
    }


def fg_v31_params(owner: FarmGuardianColumns) -> dict[str, Any]:
    """The four v3.1 fields (an http service's `fg*`)."""
    return {k: v for k, v in fg_params(owner).items() if k not in EXTENSION_DEFAULTS}


def fg_extensions_set(farm: Farm) -> dict[str, Any]:
    """Extension fields whose value is not the default (GET /farms/NAME shows only these)."""
    values = fg_params(farm)
    return {k: values[k] for k, default in EXTENSION_DEFAULTS.items() if values[k] != default}


def fg_modified_params(farm: FarmGuardianColumns, sent: Iterable[str]) -> dict[str, Any]:
    """PUT /farms/NAME/fg: the four v3.1 fields, plus the extension fields the request named."""
    names = set(sent)
    return {k: v for k, v in fg_params(farm).items() if k not in EXTENSION_DEFAULTS or k in names}


def fg_backend(backend: Backend, status: str) -> dict[str, Any]:
    health = backend.health
    return {
        "id": backend.zapi_id,
        "ip": backend.ip,
        "port": backend.port,
        "status": status,
        "health": health.state if health is not None else "up",
        "changed": (
            health.changed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if health is not None and health.changed_at is not None
            else None
        ),
        "reason": health.reason if health is not None else "",
    }


def fg_detail(view: FarmView) -> dict[str, Any]:
    """GET /farms/NAME/fg (kernlb extension): the settings and each backend's last transition."""
    farm = view.farm
    return {
        "description": f"Show farm guardian of {farm.name}",
        "params": fg_params(farm),
        "backends": [fg_backend(b, view.backend_status(b)) for b in farm.backends],
    }
