"""Pure rules over the desired state: ports, priority levels, availability, farm status."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import re
from collections.abc import Collection, Iterable, Sequence

from app.domain.model import HELPERS, TRANSPORTS, BackendSpec, FarmSpec, PortRange

_PORT = r"(?:[1-9][0-9]{0,4})"
_VPORT_ITEM = re.compile(rf"{_PORT}(?::{_PORT})?")  # used with fullmatch


class PortSpecError(ValueError):
    """A vport string that is not a valid multiport specification."""


def parse_vport(text: str) -> tuple[PortRange, ...] | None:
    """Parse ZAPI's multiport format (`*`, `80`, `80,443`, `1000:2000`); None means all ports."""
    if text == "*":
        return None
    if not text:
        raise PortSpecError("empty port list")
    ranges: list[PortRange] = []
    for item in text.split(","):
        if not _VPORT_ITEM.fullmatch(item):
            raise PortSpecError(f"bad port item {item!r}")
        first_s, _, last_s = item.partition(":")
        first = int(first_s)
        last = int(last_s) if last_s else first
        if not (1 <= first <= 65535 and 1 <= last <= 65535):
            raise PortSpecError(f"port out of range in {item!r}")
        if last < first:
            raise PortSpecError(f"range {item!r} runs backwards")
        ranges.append(PortRange(first, last))
    ordered = sorted(ranges)
    for left, right in itertools.pairwise(ordered):
        if left.overlaps(right):
            raise PortSpecError(f"ports {left} and {right} overlap")
    return tuple(ranges)


def format_vport(ports: tuple[PortRange, ...] | None) -> str:
    if ports is None:
        return "*"
    return ",".join(str(p) for p in ports)


def transports_of(protocol: str) -> tuple[str, ...]:
    """The transport protocols a farm's dispatcher entries cover."""
    if protocol == "all":
        return TRANSPORTS
    return HELPERS.get(protocol, (protocol,))


def dispatch_level(farm: FarmSpec) -> str:
    """Which dispatcher a farm lives in: explicit ports, all ports of a protocol, or all traffic."""
    if farm.ports is not None:
        return "ports"
    return "vip" if farm.protocol == "all" else "proto"


def farms_overlap(a: FarmSpec, b: FarmSpec) -> bool:
    """Whether two farms would claim the same traffic at the same dispatcher level.

    A wildcard-port farm and a specific-port farm on one VIP do not overlap: the specific
    dispatcher is consulted first, so each keeps its own traffic.
    """
    if ipaddress.ip_address(a.vip) != ipaddress.ip_address(b.vip):
        return False
    level = dispatch_level(a)
    if a.stateless != b.stateless and level != dispatch_level(b):
        # The netdev ingress hook (dsr, stateless_dnat) sees packets before the NAT modes:
        # there, a wildcard farm would capture a more specific NAT farm's traffic.
        netdev, nat = (a, b) if a.stateless else (b, a)
        order = ("ports", "proto", "vip")
        if order.index(dispatch_level(netdev)) > order.index(dispatch_level(nat)):
            return _transports_meet(a, b)
        return False
    if level != dispatch_level(b):
        return False
    if level == "vip":
        return True
    if not set(transports_of(a.protocol)) & set(transports_of(b.protocol)):
        return False
    if level == "proto":
        return True
    assert a.ports is not None and b.ports is not None
    return any(x.overlaps(y) for x in a.ports for y in b.ports)


def _transports_meet(a: FarmSpec, b: FarmSpec) -> bool:
    if "vip" in (dispatch_level(a), dispatch_level(b)):
        return True
    return bool(set(transports_of(a.protocol)) & set(transports_of(b.protocol)))


def priority_level(backends: Iterable[BackendSpec]) -> int:
    """Zevenet's priority rule, as a fixpoint.

    Start at level 1; every backend whose priority is within the current level and that is
    not up raises the level by one.  Backends up with priority <= level receive traffic.
    """
    items = list(backends)
    level = 1
    while True:
        unavailable = sum(1 for b in items if b.priority <= level and b.status != "up")
        new_level = 1 + unavailable
        if new_level == level:
            return level
        level = new_level


def schedulable(backends: Sequence[BackendSpec]) -> tuple[BackendSpec, ...]:
    """Backends that may receive new connections, in id order.

    A backend at its `max_conns` is left out while another one can take the connection; the
    kernel's `ct count` rule stays the hard cap either way.
    """
    level = priority_level(backends)
    chosen = [b for b in backends if b.status == "up" and b.priority <= level]
    not_full = [b for b in chosen if not (b.max_conns and b.connections >= b.max_conns)]
    return tuple(sorted(not_full or chosen, key=lambda b: b.zapi_id))


def needs_load(farm: FarmSpec) -> bool:
    """Whether the farm's rendering depends on observed connection counts."""
    if farm.stateless:
        return False  # no conntrack: nothing to count
    return farm.algorithm == "leastconn" or any(b.max_conns for b in farm.backends)


def leastconn_slots(backends: Sequence[BackendSpec], total: int) -> list[int]:
    """Slots per backend for leastconn: shares proportional to weight / (1 + connections).

    Largest-remainder rounding keeps the total exact; a heavily loaded backend may get none.
    """
    shares = [b.weight / (1 + b.connections) for b in backends]
    whole = sum(shares)
    exact = [total * s / whole for s in shares]
    slots = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (slots[i] - exact[i], i))
    for i in order[: total - sum(slots)]:
        slots[i] += 1
    return slots


def observed(farm: FarmSpec, unreachable: Collection[int]) -> FarmSpec:
    """The farm with what kernlb observed at L2: a dsr/stateless_dnat backend whose address
    the LB cannot resolve (its mark in `unreachable`) is `undefined`.  The NAT modes leave
    forwarding to the kernel's routing, so there the marks do not apply.

    Every status shown anywhere (farm view, stats, metrics) is `BackendSpec.status` and
    `farm_status` of this spec.
    """
    if not farm.stateless or not unreachable:
        return farm
    backends = tuple(
        dataclasses.replace(b, l2_reachable=b.mark not in unreachable) for b in farm.backends
    )
    return dataclasses.replace(farm, backends=backends)


def farm_status(farm: FarmSpec) -> str:
    """ZAPI farm status (reference §4.4) of an l4xnat farm."""
    return farm_status_of(farm.running, [b.status for b in farm.backends])


def farm_status_of(running: bool, backend_statuses: Iterable[str]) -> str:
    """ZAPI farm status (reference §4.4) from its backends' statuses, in the reference's order;
    one rule for every farm profile."""
    if not running:
        return "down"
    # Backends whose status is undefined (unreachable at L2) count for nothing.
    statuses = [s for s in backend_statuses if s != "undefined"]
    if "up" not in statuses:
        return "critical"
    if "down" in statuses:
        return "problem"
    if "maintenance" in statuses:
        return "maintenance"
    return "up"


def lowest_free_id(used: Iterable[int]) -> int:
    taken = set(used)
    candidate = 0
    while candidate in taken:
        candidate += 1
    return candidate
