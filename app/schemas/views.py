"""Read models: what the services and stats return and the presenters render in ZAPI spellings.

They sit below the services so that the presenters (app/schemas/zapi.py, stats.py,
interfaces.py) can name them without importing a service.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from app.db.models import Backend, Farm
from app.db.repositories import farm_spec
from app.domain.rules import farm_status, observed


@dataclass(frozen=True)
class FarmView:
    """A farm with its status and its backends' statuses, as observed (`of`)."""

    farm: Farm
    status: str
    unreachable: frozenset[int] = frozenset()  # backend marks the LB cannot reach at L2
    statuses: dict[int, str] = field(default_factory=dict)  # backend mark -> status

    @classmethod
    def of(cls, farm: Farm, unreachable: Collection[int] = frozenset()) -> FarmView:
        spec = observed(farm_spec(farm), unreachable)
        return cls(
            farm=farm,
            status=farm_status(spec),
            unreachable=frozenset(unreachable),
            statuses={b.mark: b.status for b in spec.backends},
        )

    def backend_status(self, backend: Backend) -> str:
        return self.statuses[backend.id]


@dataclass(frozen=True)
class FarmSummary:
    """A farm's entry in `GET /farms`."""

    name: str
    profile: str
    status: str
    vip: str
    vport: str


@dataclass(frozen=True)
class BackendStats:
    id: int
    ip: str
    port: int | None
    weight: int
    priority: int
    max_conns: int
    status: str
    established: int
    pending: int


@dataclass(frozen=True)
class FarmStats:
    name: str
    profile: str
    status: str
    vip: str
    vport: str
    established: int
    pending: int
    backends: tuple[BackendStats, ...]


@dataclass(frozen=True)
class NicView:
    name: str
    ip: str
    netmask: str
    gateway: str
    mac: str
    status: str  # "up" | "down"
    has_vlan: bool


@dataclass(frozen=True)
class VirtualView:
    name: str
    parent: str
    ip: str
    netmask: str
    gateway: str
    mac: str
    status: str  # "up" when the parent is up and holds the address, else "down"


CPU_FIELDS = ("user", "nice", "sys", "idle", "iowait", "irq", "softirq")


@dataclass(frozen=True)
class InterfaceTraffic:
    name: str
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class SystemSnapshot:
    hostname: str
    date: str
    meminfo_kb: dict[str, int]  # /proc/meminfo fields, in kB
    load: tuple[float, float, float]
    cpu_percent: dict[str, float]  # CPU_FIELDS + "usage", over the last sampling interval
    cores: int
    interfaces: tuple[InterfaceTraffic, ...]


@dataclass(frozen=True)
class NetworkSnapshot:
    hostname: str
    date: str
    interfaces: tuple[InterfaceTraffic, ...]


@dataclass(frozen=True)
class InterfaceItem:
    """An item of `GET /interfaces`."""

    name: str
    ip: str
    netmask: str
    gateway: str
    mac: str
    status: str
    type: str  # "nic" | "vlan" | "virtual"
    has_vlan: bool = False


@dataclass(frozen=True)
class FgView:
    name: str
    description: str
    command: str
    interval: int
    timeout: int
    log: bool
    cut_conns: bool
    backend_alias: bool
    template: bool
    farms: tuple[str, ...]
