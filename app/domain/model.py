"""The desired state of the load balancer, as frozen dataclasses (no I/O, no frameworks)."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

from app.domain.ipds import IpdsSpec

# Protocols a farm dispatches on.  "all" means tcp, udp and sctp on ports, or every
# protocol when the farm has no port list.
TRANSPORTS: tuple[str, ...] = ("tcp", "udp", "sctp")

ALGORITHMS: tuple[str, ...] = (
    "weight",
    "roundrobin",
    "hash_srcip",
    "hash_srcip_srcport",
    "symhash",
    "leastconn",
)
NATTYPES: tuple[str, ...] = ("nat", "dnat", "dsr", "stateless_dnat")
STATELESS_NATTYPES: tuple[str, ...] = ("dsr", "stateless_dnat")
# Conntrack helpers a farm's `protocol` may name, and the transports each one covers.
HELPERS: dict[str, tuple[str, ...]] = {
    "ftp": ("tcp",),
    "tftp": ("udp",),
    "sip": ("tcp", "udp"),
    "irc": ("tcp",),
    "pptp": ("tcp",),
    "sane": ("tcp",),
    "amanda": ("udp",),
    "snmp": ("udp",),
    "netbios-ns": ("udp",),
}

# Canonical persistence values; "" means none.  "srcip" is stored as "ip".
PERSISTENCES: tuple[str, ...] = ("", "ip", "srcport", "srcmac", "srcip_srcport", "srcip_dstport")


@dataclass(frozen=True, order=True)
class PortRange:
    first: int
    last: int

    @property
    def is_single(self) -> bool:
        return self.first == self.last

    def overlaps(self, other: PortRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.is_single else f"{self.first}:{self.last}"


@dataclass(frozen=True)
class BackendSpec:
    """One backend as the data plane needs it."""

    mark: int  # system-wide, stable for the backend's lifetime (its database id)
    zapi_id: int  # the per-farm id clients see
    ip: str
    port: int | None
    weight: int = 1
    priority: int = 1
    max_conns: int = 0
    maintenance: bool = False
    health: str = "up"  # "up" | "down", written by health checks only
    source_addr: str | None = None  # SNAT address for this backend (nat mode)
    connections: int = 0  # observed load (conntrack), for leastconn and max_conns only
    l2_reachable: bool = True  # observed neighbour state, for dsr and stateless_dnat only

    @property
    def status(self) -> str:
        if self.maintenance:
            return "maintenance"
        if not self.l2_reachable:
            return "undefined"
        if self.health == "down":
            return "down"
        return "up"


@dataclass(frozen=True)
class FarmSpec:
    id: int  # stable database id: names chains and slot offsets
    name: str
    vip: str
    ports: tuple[PortRange, ...] | None  # None = every port ("*")
    protocol: str = "tcp"
    algorithm: str = "weight"
    nattype: str = "nat"
    persistence: str = ""
    ttl: int = 60
    running: bool = True
    source_addr: str | None = None  # SNAT address for the farm's backends (nat mode)
    device: str | None = None  # the interface holding the VIP (netdev modes hook its ingress)
    backends: tuple[BackendSpec, ...] = field(default_factory=tuple)
    ipds: IpdsSpec = field(default_factory=IpdsSpec)  # blacklists, whitelists, DoS rules

    @functools.cached_property
    def family(self) -> int:  # cached: the renderer asks several times per farm
        return ipaddress.ip_address(self.vip).version

    @property
    def stateless(self) -> bool:
        """DSR and stateless DNAT: no conntrack, every packet scheduled in the ingress hook."""
        return self.nattype in STATELESS_NATTYPES
