"""Farm use cases: create, modify, delete, start/stop, read."""

from __future__ import annotations

import builtins
import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import Farm
from app.domain.model import ALGORITHMS, HELPERS, NATTYPES, TRANSPORTS, FarmSpec
from app.domain.rules import PortSpecError, farm_status, farms_overlap, format_vport, parse_vport
from app.errors import BadRequest, Gone, NotFound
from app.net.addresses import AddressBook
from app.nft.render import MAX_FARM_ID
from app.services.uow import UnitOfWork
from app.services.values import as_int, as_ip, ip_family, is_farm_name, vport_text

UNSUPPORTED_PROFILES = ("http", "https", "gslb", "datalink")
HELPER_PROTOCOLS = (
    "ftp",
    "tftp",
    "sip",
    "amanda",
    "h323",
    "irc",
    "netbios-ns",
    "pptp",
    "sane",
    "snmp",
)
PERSISTENCE_INPUT = {
    "": "",
    "none": "",
    "ip": "ip",
    "srcip": "ip",
    "srcport": "srcport",
    "srcmac": "srcmac",
    "srcip_srcport": "srcip_srcport",
    "srcip_dstport": "srcip_dstport",
}


@dataclass(frozen=True)
class FarmView:
    """A farm with its computed status, for the presenters."""

    farm: Farm
    status: str
    unreachable: frozenset[int] = frozenset()  # backend marks shown `undefined`


@dataclass(frozen=True)
class FarmSummary:
    """A farm's entry in `GET /farms`."""

    name: str
    profile: str
    status: str
    vip: str
    vport: str


def _observed(spec: FarmSpec, unreachable: frozenset[int]) -> FarmSpec:
    if unreachable and spec.stateless:
        backends = tuple(
            dataclasses.replace(b, l2_reachable=b.mark not in unreachable) for b in spec.backends
        )
        spec = dataclasses.replace(spec, backends=backends)
    return spec


def status_of(farm: Farm, unreachable: frozenset[int] = frozenset()) -> str:
    return farm_status(_observed(repo.farm_spec(farm), unreachable))


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


class FarmService:
    def __init__(self, uow: UnitOfWork, addresses: AddressBook) -> None:
        self.uow = uow
        self.addresses = addresses
        self.helpers: frozenset[str] = frozenset()  # probed at start-up

    # -- reads -----------------------------------------------------------------------------

    def list(self) -> list[FarmView]:
        with self.uow.read() as session:
            gone = self.unreachable()
            return [FarmView(f, status_of(f, gone), gone) for f in repo.list_farms(session)]

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
                status=farm_status(_observed(spec, gone)),
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
            gone = self.unreachable()
            return FarmView(farm, status_of(farm, gone), gone)

    # -- create ----------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> tuple[FarmView, str, str]:
        """Returns the farm, the interface holding its VIP, and the profile as given."""
        name = body.get("farmname")
        description = f"Creating farm '{name if isinstance(name, str) else ''}'"
        if not is_farm_name(name):
            raise BadRequest(
                "The farm name is required to have alphabet letters, numbers or hypens (-) only.",
                description=description,
            )
        assert isinstance(name, str)
        with self.uow.write(description) as work:
            session = work.session
            if repo.get_farm(session, name) is not None:
                raise BadRequest(
                    "Error trying to create a new farm, the farm name already exists.",
                    description=description,
                )
            profile = body.get("profile")
            profile_l = profile.lower() if isinstance(profile, str) else ""
            if profile_l in UNSUPPORTED_PROFILES:
                raise BadRequest(
                    f"The farm profile '{profile}' is not supported by kernlb yet; "
                    "only l4xnat farms can be created.",
                    description=description,
                )
            if profile_l != "l4xnat":
                raise BadRequest("The farm's profile is not supported.", description=description)
            vip = as_ip(body.get("vip"))
            if vip is None:
                raise BadRequest("Invalid vip.", description=description)
            interface = self.addresses.interface_of(vip)
            if interface is None:
                raise BadRequest(
                    "The vip IP must exist in some interface.", description=description
                )
            vport = vport_text(body.get("vport"))
            try:
                ports = parse_vport(vport) if vport is not None else None
            except PortSpecError:
                ports, vport = None, None
            if vport is None:
                raise BadRequest(
                    "The virtual port must be an acceptable value and must be available.",
                    description=description,
                )
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
            work.touch(farm.id)
            view = FarmView(farm, status_of(farm, self.unreachable()))
        return view, interface, str(profile)

    # -- modify ----------------------------------------------------------------------------

    def modify(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Validate every field first, then apply them all in one transaction."""
        description = f"Modify L4xNAT farm '{name}'"
        echo = dict(body)
        with self.uow.write(description) as work:
            session = work.session
            farm = repo.get_farm(session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description="Modify farm")
            changes: dict[str, Any] = {}

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            new_name = body.get("newfarmname")
            if new_name is not None:
                if new_name == "":
                    raise bad("Invalid newfarmname, can't be blank.")
                if not is_farm_name(new_name):
                    raise bad("Invalid newfarmname.")
                if new_name != farm.name:
                    if farm.running:
                        raise bad("Cannot change the farm name while running")
                    if repo.get_farm(session, new_name) is not None:
                        raise bad(f"The farm {new_name} already exists, try another name.")
                    changes["name"] = new_name

            algorithm = body.get("algorithm")
            if algorithm is not None and not isinstance(algorithm, str):
                raise bad("Invalid algorithm.")
            if algorithm is not None:
                if algorithm == "":
                    raise bad("Invalid algorithm, can't be blank.")
                if algorithm == "prio":
                    raise Gone("Not supported anymore.", description=description)
                if algorithm not in ALGORITHMS:
                    raise bad("Invalid algorithm.")
                changes["algorithm"] = algorithm

            persistence = body.get("persistence")
            if persistence is not None:
                if not isinstance(persistence, str) or persistence not in PERSISTENCE_INPUT:
                    raise bad("Invalid persistence.")
                changes["persistence"] = PERSISTENCE_INPUT[persistence]

            protocol = body.get("protocol")
            if protocol is not None and not isinstance(protocol, str):
                raise bad("Invalid protocol.")
            if protocol is not None:
                if protocol == "":
                    raise bad("Invalid protocol, can't be blank.")
                if protocol in HELPERS and protocol not in self.helpers:
                    raise bad(
                        f"The protocol '{protocol}' needs the kernel's {protocol} conntrack "
                        "helper, which this kernel does not provide."
                    )
                if protocol not in (*TRANSPORTS, "all", *HELPERS):
                    raise bad("Invalid protocol.")
                changes["protocol"] = protocol

            nattype = body.get("nattype")
            if nattype is not None and not isinstance(nattype, str):
                raise bad("Invalid nattype.")
            if nattype is not None:
                if nattype == "":
                    raise bad("Invalid nattype, can't be blank.")
                if nattype not in NATTYPES:
                    raise bad("Invalid nattype.")
                changes["nattype"] = nattype

            if "ttl" in body and body["ttl"] is not None:
                if body["ttl"] == "":
                    raise bad("Invalid ttl, can't be blank.")
                ttl = as_int(body["ttl"])
                if ttl is None or ttl < 1:
                    raise bad("Invalid ttl.")
                changes["ttl"] = ttl
                echo["ttl"] = ttl

            vip_in = body.get("vip")
            if vip_in is not None:
                if vip_in == "":
                    raise bad("Invalid vip, can't be blank.")
                vip = as_ip(vip_in)
                if vip is None:
                    raise bad("Invalid vip.")
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

            vport_in = body.get("vport")
            if vport_in is not None:
                vport = vport_text(vport_in)
                if vport == "":
                    raise bad("Invalid vport, can't be blank.")
                try:
                    ports = parse_vport(vport) if vport is not None else None
                except PortSpecError:
                    vport = None
                if vport is None:
                    raise bad("Invalid vport.")
                changes["ports"] = ports

            source_in = body.get("source_addr")
            if source_in is not None:
                vip_family = ip_family(changes.get("vip", farm.vip))
                changes["source_addr"] = self.source_address(
                    source_in, family=vip_family, description=description
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
            work.touch(farm.id)
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
            work.touch(farm.id)

    # -- actions ---------------------------------------------------------------------------

    def action(self, name: str, body: dict[str, Any]) -> tuple[str, str]:
        description = "Farm actions"
        with self.uow.write(description) as work:
            farm = repo.get_farm(work.session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description=description)
            action = body.get("action")
            if action is None:
                raise BadRequest("No action has been requested.", description=description)
            if action not in ("start", "stop", "restart"):
                raise BadRequest(
                    "Invalid action; the actions available are stop, start and restart",
                    description=description,
                )
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
            work.touch(farm.id)
            status = status_of(farm, self.unreachable())
        return str(action), status
