"""The kernel ruleset's vocabulary: table names, object names, mark bits and id limits.

One place for the facts that the renderer writes, the diff and the kernel readers (nft
listings, conntrack) read back, and the services check ids against.  Pure: no I/O.
"""

from __future__ import annotations

FAMILY = "inet"  # NAT modes, IPv4 and IPv6
NETDEV = "netdev"  # DSR and stateless DNAT, in the ingress hook
FAMILIES = (FAMILY, NETDEV)
TABLE = "kernlb"  # both families' tables carry this name

# A conntrack/packet mark: bits 0-23 name the backend (its database id), the top bits tell
# the srcnat chain what to do with the connection.
BACKEND_MASK = 0x00FFFFFF  # 16.7 M backends
MASQUERADE_BIT = 0x80000000
SNAT_BIT = 0x40000000  # SNAT to the backend's source address (map srcaddrs4/6)

SLOTS_PER_FARM = 4096  # slot keys of farm N are N*4096 .. N*4096+4095 (farm ids < 2^20)
MAX_FARM_ID = (1 << 20) - 1
MAX_BACKEND_MARK = BACKEND_MASK


def qualified(family: str, name: str) -> str:
    """Objects are keyed `family/name`: both tables are called kernlb."""
    return f"{family}/{name}"


def split_name(name: str) -> tuple[str, str]:
    family, _, bare = name.partition("/")
    return family, bare


def farm_chain_name(farm_id: int) -> str:
    return f"f-{farm_id}"


def limit_chain_name(farm_id: int) -> str:
    return f"l-{farm_id}"


def persist_set_name(farm_id: int) -> str:
    return f"p-{farm_id}"


def conns_set_name(farm_id: int) -> str:
    return f"c-{farm_id}"


def helper_name(farm_id: int, transport: str) -> str:
    return f"h-{farm_id}-{transport}"


def ingress_chain_name(device: str) -> str:
    return f"in-{device.lower()}"


def ingress_family_chain_name(device: str, family: int) -> str:
    """The IPv4 (4) or IPv6 (6) half of a device's ingress chain."""
    return f"in{family}-{device.lower()}"


# IPDS (kernlb's filter chain before scheduling): the base chain, each farm's chain, its
# per-source meters and the named counters that /stats and /metrics read back.
IPDS_CHAIN = "ipds"


def ipds_chain_name(farm_id: int) -> str:
    return f"i-{farm_id}"


def meter_name(farm_id: int, rule_id: int) -> str:
    return f"m-{farm_id}-{rule_id}"


def list_counter_name(farm_id: int, list_id: int) -> str:
    return f"x-{farm_id}-l{list_id}"


def allow_counter_name(farm_id: int) -> str:
    return f"x-{farm_id}-allow"


def rule_counter_name(farm_id: int, rule_id: int) -> str:
    return f"x-{farm_id}-d{rule_id}"


def slot_offset(farm_id: int) -> int:
    return farm_id * SLOTS_PER_FARM
