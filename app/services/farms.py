"""Farm use cases: create, modify, delete, start/stop, read."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.db import etags
from app.db import http_repository as hrepo
from app.db import repositories as repo
from app.db.models import Farm
from app.domain.model import HELPERS, FarmSpec
from app.domain.rules import (
    farm_status,
    farms_overlap,
    format_vport,
    observed,
    parse_vport,
)
from app.domain.ruleset import MAX_FARM_ID
from app.domain.values import as_ip, ip_family, is_farm_name
from app.errors import BadRequest, NotFound
from app.net.addresses import AddressBook
from app.reconcile.uow import UnitOfWork
from app.schemas.requests import FarmActionBody, FarmCreate, FarmUpdate
from app.schemas.views import FarmSummary, FarmView


def status_of(farm: Farm, unreachable: frozenset[int] = frozenset()) -> str:
    return FarmView.of(farm, unreachable).status


def _spec_with(farm: Farm, **changes: Any) -> FarmSpec:
    return dataclasses.replace(repo.farm_spec(farm), **changes)


def _check_overlap(session: Session, spec: FarmSpec, *, description: str, prefix: str = "") -> None:
    for other in repo.farms_on_vip(session, spec.vip, except_id=spec.id if spec.id > 0 else None):
        if not other.running:
            continue
        if farms_overlap(spec, repo.farm_spec(other)):
            raise BadRequest(
                f"{prefix}The virtual IP and port {spec.vip} {format_vport(spec.ports)} "
                f"({spec.protocol}) overlap with the running farm '{other.name}'.",
                description=description,
            )
    for http in hrepo.http_farms_on_vip(session, spec.vip):
        if http.running and hrepo.l4_claims_port(spec, spec.vip, http.vport):
            raise BadRequest(
                f"{prefix}The virtual IP and port {spec.vip} {format_vport(spec.ports)} "
                f"({spec.protocol}) overlap with the running farm '{http.name}'.",
                description=description,
            )


class FarmService:
    def __init__(self, uow: UnitOfWork, addresses: AddressBook) -> None:
        self.uow = uow
        self.addresses = addresses
        self.helpers: frozenset[str] = frozenset()  # probed at start-up

    # -- reads -----------------------------------------------------------------------------

    def list(self) -> list[FarmView]:
        with self.uow.read() as session:
            gone = self.unreachable()
            return [FarmView.of(f, gone) for f in repo.list_farms(session)]

    def summaries(self) -> builtins.list[FarmSummary]:
        """Every farm's list entry, from the state the reconciler applied last.

        That state is what the database committed (the reconciler is its only writer), and
        reading it costs no query: `GET /farms` stays fast at 10,000 farms.
        """
        specs = self.uow.reconciler.specs()
        gone = self.unreachable()
        items = [
            FarmSummary(
                name=spec.name,
                profile="l4xnat",
                status=farm_status(observed(spec, gone)),
                vip=spec.vip,
                vport=format_vport(spec.ports),
            )
            for spec in specs.values()
        ]
        return sorted(items, key=lambda item: item.name)

    def get(self, name: str, *, description: str, message: str | None = None) -> FarmView:
        with self.uow.read() as session:
            farm = repo.get_farm(session, name)
            if farm is None:
                raise NotFound(
                    message or f"The farmname {name} does not exist.", description=description
                )
            etags.record_read(farm)
            gone = self.unreachable()
            return FarmView.of(farm, gone)

    # -- create ----------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any] | FarmCreate) -> tuple[FarmView, str, str]:
        """Returns the farm, the interface holding its VIP, and the profile as given."""
        raw_name = body.farmname if isinstance(body, FarmCreate) else body.get("farmname")
        description = f"Creating farm '{raw_name if isinstance(raw_name, str) else ''}'"
        with self.uow.write(description) as work:
            session = work.session
            # The reference's order: the name, then whether it is taken, then the rest.
            if is_farm_name(raw_name) and (
                repo.get_farm(session, str(raw_name)) or hrepo.get_http_farm(session, str(raw_name))
            ):
                raise BadRequest(
                    "Error trying to create a new farm, the farm name already exists.",
                    description=description,
                )
            request = FarmCreate.parse(body, description=description)
            name, vip = request.farmname, request.vip
            interface = self.addresses.interface_of(vip)
            if interface is None:
                raise BadRequest(
                    "The vip IP must exist in some interface.", description=description
                )
            ports = parse_vport(request.vport)
            protocol = "all" if ports is None else "tcp"
            spec = FarmSpec(id=0, name=name, vip=vip, ports=ports, protocol=protocol)
            _check_overlap(session, spec, description=description)
            farm = Farm(
                name=name,
                profile="l4xnat",
                vip=vip,
                vport=format_vport(ports),
                protocol=protocol,
                algorithm="weight",
                nattype="nat",
                persistence="",
                ttl=60,
                running=True,
                interface=interface,
            )
            session.add(farm)
            session.flush()
            if farm.id > MAX_FARM_ID:
                raise BadRequest("The farm limit has been reached.", description=description)
            view = FarmView.of(farm, self.unreachable())
        return view, interface, request.profile

    # -- modify ----------------------------------------------------------------------------

    def modify(self, name: str, body: Mapping[str, Any] | FarmUpdate) -> dict[str, Any]:
        """Validate every field first, then apply them all in one transaction.

        Returns the echo of the request (ZAPI answers with what it was sent, typed)."""
        description = f"Modify L4xNAT farm '{name}'"
        with self.uow.write(description) as work:
            session = work.session
            farm = repo.get_farm(session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description="Modify farm")
            request = FarmUpdate.parse(body, description=description)
            echo = dict(body) if isinstance(body, Mapping) else request.echo()
            changes: dict[str, Any] = {}

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            new_name = request.newfarmname
            if new_name is not None and new_name != farm.name:
                if farm.running:
                    raise bad("Cannot change the farm name while running")
                if repo.get_farm(session, new_name) or hrepo.get_http_farm(session, new_name):
                    raise bad(f"The farm {new_name} already exists, try another name.")
                changes["name"] = new_name
            if request.algorithm is not None:
                changes["algorithm"] = request.algorithm
            if request.persistence is not None:
                changes["persistence"] = request.persistence
            protocol = request.protocol
            if protocol is not None:
                if protocol in HELPERS and protocol not in self.helpers:
                    raise bad(
                        f"The protocol '{protocol}' needs the kernel's {protocol} conntrack "
                        "helper, which this kernel does not provide."
                    )
                changes["protocol"] = protocol
            if request.nattype is not None:
                changes["nattype"] = request.nattype
            if request.ttl is not None:
                changes["ttl"] = echo["ttl"] = request.ttl
            vip = request.vip
            if vip is not None:
                vip_interface = self.addresses.interface_of(vip)
                if vip_interface is None:
                    raise bad("The vip IP must exist in some interface.")
                changes["interface"] = vip_interface
                families = {ip_family(b.ip) for b in farm.backends}
                if families and families != {ip_family(vip)}:
                    raise bad(
                        "Invalid vip: a farm's backends share its IP family, and this farm's "
                        f"backends are IPv{families.pop()}."
                    )
                changes["vip"] = vip
            if request.vport is not None:
                changes["ports"] = parse_vport(request.vport)
            if request.source_addr is not None:
                vip_family = ip_family(changes.get("vip", farm.vip))
                changes["source_addr"] = self.source_address(
                    request.source_addr, family=vip_family, description=description
                )

            if changes.get("protocol") == "all":
                # ZAPI: choosing "all" also clears the ports.
                changes["ports"] = None
                echo["vport"] = "*"

            spec_changes = {k: v for k, v in changes.items() if k not in ("name", "interface")}
            if "interface" in changes:
                spec_changes["device"] = changes["interface"].split(":", 1)[0]
            spec = _spec_with(farm, **spec_changes)
            if spec.running and ({"vip", "ports", "protocol", "nattype"} & changes.keys()):
                _check_overlap(session, spec, description=description)
            self.check_netdev(session, spec, description=description)

            for key, value in changes.items():
                if key == "ports":
                    farm.vport = format_vport(value)
                else:
                    setattr(farm, key, value)
        return echo

    def unreachable(self) -> frozenset[int]:
        return self.uow.reconciler.unreachable_marks()

    def check_netdev(self, session: Session, spec: FarmSpec, *, description: str) -> None:
        """What dsr and stateless_dnat need: the VIP on a real interface, backends on its L2
        segment, no port translation, and (stateless_dnat) replies that identify one farm."""
        if not spec.stateless:
            return
        mode = spec.nattype
        device = spec.device
        if not device or device == "lo":
            raise BadRequest(
                f"The nattype '{mode}' needs the VIP {spec.vip} on the interface that faces the "
                f"clients and the backends; it is on {device or 'no interface'}.",
                description=description,
            )
        single = spec.ports[0].first if spec.ports and len(spec.ports) == 1 else None
        for backend in spec.backends:
            if backend.port is not None and backend.port != single:
                raise BadRequest(
                    f"The nattype '{mode}' cannot translate ports: backend {backend.zapi_id} has "
                    f"port {backend.port}; remove it (backends serve the VIP's own ports).",
                    description=description,
                )
            if not self.addresses.on_link(backend.ip, device):
                raise BadRequest(
                    f"The backend {backend.ip} is not on the L2 segment of {device}: the nattype "
                    f"'{mode}' forwards frames to its backends directly.",
                    description=description,
                )
        if mode == "stateless_dnat" and spec.running:
            mine = {b.ip for b in spec.backends}
            for other in repo.stateless_farms(session, except_id=spec.id if spec.id else None):
                other_spec = repo.farm_spec(other)
                if not other_spec.running:
                    continue
                shared = mine & {b.ip for b in other_spec.backends}
                ports_meet = (
                    spec.ports is None
                    or other_spec.ports is None
                    or any(x.overlaps(y) for x in spec.ports for y in other_spec.ports)
                )
                if shared and ports_meet:
                    raise BadRequest(
                        f"The backend {sorted(shared)[0]} already serves these ports in the "
                        f"stateless_dnat farm '{other.name}': its replies could not be told apart.",
                        description=description,
                    )

    def source_address(self, value: Any, *, family: int, description: str) -> str | None:
        """Validate a SNAT source address (kernlb extension); "" clears it."""
        if value == "":
            return None
        address = as_ip(value)
        if address is None or ip_family(address) != family:
            raise BadRequest(
                f"Invalid source_addr: an IPv{family} address is expected.", description=description
            )
        if self.addresses.interface_of(address) is None:
            raise BadRequest(
                "The source_addr IP must exist in some interface.", description=description
            )
        return address

    # -- delete ----------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        with self.uow.write(f"Delete farm {name}") as work:
            farm = repo.get_farm(work.session, name)
            if farm is None:
                raise NotFound(
                    f"The farm {name} doesn't exist, try another name.",
                    description=f"Delete farm {name}",
                )
            if farm.running:
                work.cut(*(b.id for b in farm.backends))
            work.session.delete(farm)

    # -- actions ---------------------------------------------------------------------------

    def action(self, name: str, body: Mapping[str, Any] | FarmActionBody) -> tuple[str, str]:
        description = "Farm actions"
        with self.uow.write(description) as work:
            farm = repo.get_farm(work.session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description=description)
            action = FarmActionBody.parse(body, description=description).action
            if action in ("stop", "restart") and farm.running:
                # Like the original: stopping a farm cuts its connections.
                work.cut(*(b.id for b in farm.backends))
            if action in ("start", "restart"):
                vip_interface = self.addresses.interface_of(farm.vip)
                if vip_interface is None:
                    raise BadRequest(
                        f"The virtual ip {farm.vip} is not defined in any interface.",
                        description=description,
                    )
                farm.interface = vip_interface  # the VIP may have moved while stopped
                spec = _spec_with(farm, running=True)
                self.check_netdev(work.session, spec, description=description)
                _check_overlap(
                    work.session,
                    spec,
                    description=description,
                    prefix=f"Error trying to set the action {action} in farm {name}. ",
                )
                farm.running = True
            else:
                farm.running = False
            status = status_of(farm, self.unreachable())
        return action, status
