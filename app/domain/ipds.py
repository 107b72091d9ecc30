"""IPDS (blacklists, whitelists, DoS rules) as the data plane needs it: pure values.

Zevenet's IPDS names are kept: lists have a `policy` (`deny` = blacklist, `allow` =
whitelist); DoS rules are `bogustcpflags`, `limitconns`, `limitrst`, `limitsec`, plus the
kernlb extension `limitfarmsec` (a farm-wide new-connection rate).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

POLICIES: tuple[str, ...] = ("deny", "allow")
LIST_TYPES: tuple[str, ...] = ("local",)

# Rules a farm can take, and the parameters each one uses.
DOS_RULES: dict[str, tuple[str, ...]] = {
    "bogustcpflags": (),
    "limitconns": ("limit_conns",),
    "limitrst": ("limit", "limit_burst"),
    "limitsec": ("limit", "limit_burst"),
    "limitfarmsec": ("limit", "limit_burst"),  # kernlb extension
}
# Zevenet's system-wide rules: known names, not farm rules (refused with their own message).
SYSTEM_DOS_RULES: tuple[str, ...] = ("dropicmp", "sshbruteforce")
# Rules tracked per source in a meter (a dynamic set of a fixed size).
METERED_RULES: tuple[str, ...] = ("limitconns", "limitrst", "limitsec")
# Zevenet's defaults when a rule is created (getDOSInitialParams).
DOS_DEFAULTS: dict[str, dict[str, int]] = {
    "bogustcpflags": {},
    "limitconns": {"limit_conns": 20},
    "limitrst": {"limit": 10, "limit_burst": 5},
    "limitsec": {"limit": 20, "limit_burst": 15},
    "limitfarmsec": {"limit": 1000, "limit_burst": 500},
}
DESCRIPTIONS: dict[str, str] = {
    # Zevenet's own texts (GET /ipds/dos/rules).
    "bogustcpflags": "Check bogus TCP flags.",
    "limitconns": "Total connections limit per source IP.",
    "limitrst": "Limit RST request per second.",
    "limitsec": "Connection limit per second.",
    "limitfarmsec": "Limit the new connections per second of the whole farm (kernlb extension)",
}

MAX_LIMIT = 10_000_000  # packets or connections per second; more is no limit at all
MAX_CONNS = 1_000_000
DEFAULT_METER_SIZE = 65536
MIN_METER_SIZE = 1
MAX_METER_SIZE = 4_194_304
OVERFLOW_FACTOR = 10  # default aggregate limit of untracked sources = 10 x the per-source limit
METER_TIMEOUT = 60  # seconds an idle source stays in a rate meter


@dataclass(frozen=True)
class Source:
    """One list entry: an address or a CIDR network, in canonical text."""

    text: str  # "198.18.0.1" or "198.18.0.0/24" (host bits cleared)
    family: int
    first: int
    last: int

    @property
    def is_host(self) -> bool:
        return self.first == self.last


def _parse_ipv4(value: str) -> Source | None:
    """The common case without `ipaddress` (5x faster: a 1,000,000-source PUT parses every
    entry); None hands anything unusual to the general parser."""
    addr, slash, bits = value.partition("/")
    try:
        packed = socket.inet_pton(socket.AF_INET, addr)  # strict dotted quad, like ipaddress
    except OSError:
        return None
    if slash and not (bits.isascii() and bits.isdigit() and len(bits) <= 2 and int(bits) <= 32):
        return None
    length = int(bits) if slash else 32
    number = int.from_bytes(packed, "big")
    host = (1 << (32 - length)) - 1
    if number & host:
        return None  # the general parser refuses it with its own reason
    text = addr if length == 32 else f"{addr}/{length}"
    return Source(text=text, family=4, first=number, last=number | host)


def parse_source(value: str) -> Source:
    """An address or CIDR; host bits must be clear (`10.0.0.1/8` is refused: ambiguous)."""
    if not isinstance(value, str) or not value or value != value.strip() or "%" in value:
        raise ValueError("not an address or CIDR")
    if ":" not in value and (fast := _parse_ipv4(value)) is not None:
        return fast
    network = ipaddress.ip_network(value, strict=True)
    if network.prefixlen == network.max_prefixlen:
        text = str(network.network_address)
    else:
        text = str(network)
    return Source(
        text=text,
        family=network.version,
        first=int(network.network_address),
        last=int(network.broadcast_address),
    )


def prefix_of(text: str) -> tuple[int, int, str]:
    """(family, prefix length, network address) of a canonical source text."""
    addr, _, length = text.partition("/")
    family = 6 if ":" in addr else 4
    return family, int(length) if length else (32 if family == 4 else 128), addr


@dataclass(frozen=True)
class ListRef:
    id: int
    name: str
    policy: str
    # (family, prefix length) of the sources the list holds: one kernel set each.  Filled by
    # the reconciler from the list's rendered sets, so farm rules look up only those.
    shape: tuple[tuple[int, int, int], ...] = ()  # (family, prefix length, size tier)


@dataclass(frozen=True)
class DosSpec:
    id: int
    name: str
    rule: str
    limit: int = 0
    limit_burst: int = 0
    limit_conns: int = 0
    meter_size: int = DEFAULT_METER_SIZE
    overflow_limit: int = 0  # 0 = OVERFLOW_FACTOR x the per-source limit
    overflow_burst: int = 0

    @property
    def aggregate_limit(self) -> int:
        base = self.limit_conns if self.rule == "limitconns" else self.limit
        return self.overflow_limit or base * OVERFLOW_FACTOR

    @property
    def aggregate_burst(self) -> int:
        return self.overflow_burst or max(1, self.limit_burst * OVERFLOW_FACTOR)


@dataclass(frozen=True)
class IpdsSpec:
    """What is attached to one farm."""

    lists: tuple[ListRef, ...] = ()
    dos: tuple[DosSpec, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.lists or self.dos)


@dataclass(frozen=True)
class ListSpec:
    id: int
    name: str
    policy: str
    members: dict[int, frozenset[str]] = field(default_factory=dict)  # family -> sources
