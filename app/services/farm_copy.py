"""Create a farm as a copy of another (ZAPI 4.0 `POST /farms` with `copy_from`, zapi40-l4.md §3.4).

The copy takes the source's settings, its backends (same ids and settings, new marks) and its
farmguardian link; the vip and vport come from the request.  It starts when its address is free
(no running farm overlaps it), and is left stopped otherwise, as the original does.  One unit of
work: the copy and its kernel objects appear together or not at all.
"""

from __future__ import annotations

from typing import Any

from app.db import repositories as repo
from app.db.models import Backend, Farm
from app.domain.rules import PortSpecError, farms_overlap, format_vport, parse_vport
from app.domain.ruleset import MAX_BACKEND_MARK, MAX_FARM_ID
from app.domain.values import as_ip, ip_family, vport_text
from app.errors import BadRequest
from app.schemas.views import FarmView
from app.services.farms import FarmService


def copy_farm(
    farms: FarmService, source_name: str, body: dict[str, Any], *, description: str
) -> tuple[FarmView, str]:
    """Returns the new farm and the interface holding its VIP."""

    def bad(message: str) -> BadRequest:
        return BadRequest(message, description=description)

    name = str(body["farmname"])
    with farms.uow.write(description) as work:
        session = work.session
        source = repo.get_farm(session, source_name)
        if source is None:
            raise bad(f"The farm '{source_name}' does not exist.")
        if repo.get_farm(session, name) is not None:
            raise bad("Error trying to create a new farm, the farm name already exists.")
        vip = as_ip(body.get("vip"))
        interface = farms.addresses.interface_of(vip) if vip is not None else None
        if vip is None or interface is None:
            raise bad("The vip IP must exist in some interface.")
        if source.backends and ip_family(source.backends[0].ip) != ip_family(vip):
            raise bad("Invalid VIP address, VIP and backends can't be from diferent IP version.")
        vport = vport_text(body.get("vport"))
        try:
            ports = parse_vport(vport) if vport is not None else None
        except PortSpecError:
            vport = None
        if vport is None:
            raise bad("The virtual port must be an acceptable value and must be available.")
        if ports is None:
            protocol = "all"
        elif source.protocol == "all":
            protocol = "tcp"
        else:
            protocol = source.protocol
        farm = Farm(
            name=name,
            profile="l4xnat",
            vip=vip,
            vport=format_vport(ports),
            protocol=protocol,
            algorithm=source.algorithm,
            nattype=source.nattype,
            persistence=source.persistence,
            ttl=source.ttl,
            running=False,
            interface=interface,
            source_addr=source.source_addr if source.nattype == "nat" else None,
            fg_enabled=source.fg_enabled,
            fg_timecheck=source.fg_timecheck,
            fg_script=source.fg_script,
            fg_log=source.fg_log,
            fg_timeout=source.fg_timeout,
            fg_rise=source.fg_rise,
            fg_fall=source.fg_fall,
            fg_cut_conns=source.fg_cut_conns,
            fg_name=source.fg_name,
        )
        for backend in source.backends:
            farm.backends.append(
                Backend(
                    zapi_id=backend.zapi_id,
                    ip=backend.ip,
                    port=backend.port,
                    weight=backend.weight,
                    priority=backend.priority,
                    max_conns=backend.max_conns,
                    maintenance=backend.maintenance,
                    maintenance_mode=backend.maintenance_mode,
                    source_addr=backend.source_addr,
                )
            )
        session.add(farm)
        session.flush()
        if farm.id > MAX_FARM_ID:
            raise bad("The farm limit has been reached.")
        if any(b.id > MAX_BACKEND_MARK for b in farm.backends):
            raise bad("The backend limit has been reached.")
        spec = repo.farm_spec(farm)
        others = repo.farms_on_vip(session, vip, except_id=farm.id)
        busy = any(o.running and farms_overlap(spec, repo.farm_spec(o)) for o in others)
        if not busy:
            farm.running = True
            farms.check_netdev(session, repo.farm_spec(farm), description=description)
        view = FarmView.of(farm, farms.unreachable())
    return view, interface
