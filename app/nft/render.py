"""Pure renderer: desired state (FarmSpec) -> nftables JSON objects.

Same input, same output: everything is ordered deterministically and every number (marks,
slot offsets, hash seeds) is derived from stable database ids.  No clock, no I/O.

Layout (see docs/dataplane.md): NAT modes live entirely in the nat hooks, which conntrack
runs for the first packet of a connection only, so an established packet meets no kernlb rule.
- `nat-pre` (nat prerouting, dstnat): one `meta nfproto vmap` sends IPv4 to `dispatch4` and
  IPv6 to `dispatch6`; those look the packet up in verdict maps keyed on
  `l4proto . daddr . dport` (exact ports, then port ranges), `l4proto . daddr` (farms on every
  port) and `daddr` (protocol all), and `goto` the farm chain.
- `f-<farm id>`: helpers, persistence, then scheduling: a hash or counter plus the farm's slot
  offset goes into the conntrack mark (a rule of its own, replaced in place when the backends
  change), then `goto slot-dnat4|6`, which maps it (map `slots`) to the backend mark and DNATs
  by it (`bea4`/`bea6` address, `bep` port) in one rule.  Farms with persistence or max_conns
  `jump slot` (mapping only), then `dnat4|6`.
- `nat-post` (srcnat): masquerade connections whose mark carries the masquerade bit, or SNAT
  them to the backend's source address (`srcaddrs4`/`srcaddrs6`) when it carries the SNAT bit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.domain.consistent import build_table, table_size
from app.domain.ipds import ListSpec
from app.domain.model import HELPERS, BackendSpec, FarmSpec, PortRange
from app.domain.rules import dispatch_level, leastconn_slots, schedulable, transports_of
from app.domain.ruleset import (
    BACKEND_MASK,
    FAMILY,
    IPDS_CHAIN,
    MASQUERADE_BIT,
    NETDEV,
    SLOTS_PER_FARM,
    SNAT_BIT,
    TABLE,
    conns_set_name,
    farm_chain_name,
    helper_name,
    ingress_chain_name,
    ingress_family_chain_name,
    ipds_chain_name,
    limit_chain_name,
    persist_set_name,
    qualified,
    slot_offset,
    split_name,
)
from app.nft import ipds

Json = Any


HASH_ALGORITHMS = ("hash_srcip", "hash_srcip_srcport", "symhash")
LEASTCONN_MIN_SLOTS = 64
PERSIST_SET_SIZE = 262144

# Base chain priorities: dstnat, srcnat.
PRIO_DSTNAT = -100
# The cluster guard: after conntrack (-200), before dstnat and routing (mangle, -150).
PRIO_GUARD = -150
GUARD_CHAIN = "cluster-guard"
PRIO_SRCNAT = 100


@dataclass(frozen=True)
class Chain:
    decl: dict[str, Json]  # body of {"add": {"chain": decl}}
    rules: tuple[tuple[Json, ...], ...]  # each rule is a tuple of statements ("expr")


@dataclass(frozen=True)
class SetDecl:
    kind: str  # "map" | "set"
    decl: dict[str, Json]
    dynamic: bool = False  # filled by the packet path: never flushed, never re-added


@dataclass(frozen=True)
class Fragment:
    """The objects one owner (the global skeleton or one farm) puts into the table."""

    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, SetDecl] = field(default_factory=dict)
    # map name -> canonical key -> (key, value)
    elements: dict[str, dict[str, tuple[Json, Json]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ListFragment:
    """One IPDS list: its interval sets and their members (canonical source texts)."""

    sets: dict[str, SetDecl] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # qualified set -> sources


@dataclass(frozen=True)
class Ruleset:
    skeleton: Fragment
    farms: dict[int, Fragment]
    lists: dict[int, ListFragment] = field(default_factory=dict)  # IPDS lists by id


# -- small JSON builders -------------------------------------------------------------------


def _ct_mark() -> Json:
    return {"ct": {"key": "mark"}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _payload(protocol: str, field_name: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field_name}}


def _set_ct_mark(value: Json) -> Json:
    return {"mangle": {"key": _ct_mark(), "value": value}}


def _set_meta_mark(value: Json) -> Json:
    return {"mangle": {"key": _meta("mark"), "value": value}}


def _backend_of_ct_mark() -> Json:
    return {"&": [_ct_mark(), BACKEND_MASK]}


def canonical(value: Json) -> str:
    """A hashable, exact text of a JSON value (map keys); plain values take a fast path."""
    if type(value) is int or type(value) is str:
        return str(value)
    return _canonical_json(value)


def _canonical_json(value: Json) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _chain_decl(name: str, **hook: Json) -> dict[str, Json]:
    return {"family": FAMILY, "table": TABLE, "name": name, **hook}


def _ip_proto(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def _addr_type(family: int) -> str:
    return "ipv4_addr" if family == 4 else "ipv6_addr"


# -- skeleton ------------------------------------------------------------------------------

DISPATCH_MAPS = {
    # (family, level) -> map name
    (4, "ports"): "disp4",
    (4, "ranges"): "disp4r",
    (4, "proto"): "disp4p",
    (4, "vip"): "disp4a",
    (6, "ports"): "disp6",
    (6, "ranges"): "disp6r",
    (6, "proto"): "disp6p",
    (6, "vip"): "disp6a",
}


def _map_decl(
    name: str, key_type: Json, data: str, flags: list[str] | None = None, *, family: str = FAMILY
) -> SetDecl:
    decl: dict[str, Json] = {"family": family, "table": TABLE, "name": name, "type": key_type}
    decl["map"] = data
    if flags:
        decl["flags"] = flags
    return SetDecl("map", decl)


def _dispatch_key(family: int, level: str) -> Json:
    ip = _ip_proto(family)
    if level in ("ports", "ranges"):
        return {"concat": [_meta("l4proto"), _payload(ip, "daddr"), _payload("th", "dport")]}
    if level == "proto":
        return {"concat": [_meta("l4proto"), _payload(ip, "daddr")]}
    return _payload(ip, "daddr")


def render_skeleton(
    devices: frozenset[str] = frozenset(), *, ipds_on: bool = False, drop_invalid: bool = False
) -> Fragment:
    """kernlb's fixed objects, plus one ingress chain per device used by a netdev farm, plus
    the IPDS base chain and maps while some farm has IPDS rules (none: no per-packet cost),
    plus (`drop_invalid`, cluster nodes with conntrackd) the guard chain."""
    inet = _render_inet_skeleton(ipds_on, drop_invalid)
    netdev = _render_netdev_skeleton(devices)
    return Fragment(
        chains={**inet.chains, **netdev.chains},
        sets={**inet.sets, **netdev.sets},
        elements={},
    )


DISPATCH_LEVELS = ("ports", "ranges", "proto", "vip")


def _dispatch_map_decls(table_family: str) -> dict[str, SetDecl]:
    """The verdict maps of the dispatcher, most specific level first, for both IP families."""
    sets: dict[str, SetDecl] = {}
    for family in (4, 6):
        addr = _addr_type(family)
        for level in DISPATCH_LEVELS:
            name = DISPATCH_MAPS[(family, level)]
            if level in ("ports", "ranges"):
                key_type: Json = ["inet_proto", addr, "inet_service"]
            elif level == "proto":
                key_type = ["inet_proto", addr]
            else:
                key_type = addr
            flags = ["interval"] if level == "ranges" else None
            sets[name] = _map_decl(name, key_type, "verdict", flags, family=table_family)
    return sets


def ipds_dispatch_map(name: str) -> str:
    return f"{ipds.DISPATCH_PREFIX}{name}"


def dispatch_chain_name(family: int) -> str:
    return f"dispatch{family}"


def slot_dnat_chain_name(family: int) -> str:
    return f"slot-dnat{family}"


def dnat_chain_name(family: int) -> str:
    return f"dnat{family}"


def _family_vmap(key: Json, targets: dict[str, str]) -> Json:
    """One anonymous verdict map: a packet of one family never sees the other's rules."""
    return {
        "vmap": {
            "key": key,
            "data": {"set": [[k, {"goto": {"target": t}}] for k, t in targets.items()]},
        }
    }


_PORTED_L4 = {
    "match": {"op": "==", "left": _meta("l4proto"), "right": {"set": ["tcp", "udp", "sctp"]}}
}


def _dnat_rules(family: int) -> tuple[tuple[Json, ...], tuple[Json, ...]]:
    """DNAT by the backend part of the conntrack mark.

    A lookup miss makes a rule not match: backends with a port take the first rule, backends
    without one (keep the client's port) the second.  (One `mark : addr . port` map would
    fold the two lookups, but nft 1.0.6 cannot declare such a map in JSON.)
    """
    ip = _ip_proto(family)
    addr_lookup: Json = {"map": {"key": _backend_of_ct_mark(), "data": f"@bea{family}"}}
    port_lookup: Json = {"map": {"key": _backend_of_ct_mark(), "data": "@bep"}}
    return (
        (_PORTED_L4, {"dnat": {"family": ip, "addr": addr_lookup, "port": port_lookup}}),
        ({"dnat": {"family": ip, "addr": addr_lookup}},),
    )


def _slot_statements() -> tuple[Json, ...]:
    # The conntrack mark holds the slot key the farm chain wrote: map it to the backend mark.
    return (_set_ct_mark({"map": {"key": _ct_mark(), "data": "@slots"}}),)


def _render_inet_skeleton(ipds_on: bool, drop_invalid: bool = False) -> Fragment:
    """The NAT-mode skeleton: everything runs in the nat hooks.

    A nat base chain sees only the first packet of a connection (conntrack keeps the
    binding for the rest), so established packets evaluate no kernlb rule at all, and a new
    connection is dispatched, scheduled and DNATed in one pass:
    `nat-pre` -> `dispatch4|6` (by family) -> `f-<farm>` -> `slot-dnat4|6` (or, for farms
    with persistence or max_conns, `slot` then `dnat4|6`).
    """
    sets = _dispatch_map_decls(FAMILY)
    sets["slots"] = _map_decl("slots", "mark", "mark")
    sets["bea4"] = _map_decl("bea4", "mark", "ipv4_addr")
    sets["bea6"] = _map_decl("bea6", "mark", "ipv6_addr")
    sets["bep"] = _map_decl("bep", "mark", "inet_service")
    sets["srcaddrs4"] = _map_decl("srcaddrs4", "mark", "ipv4_addr")
    sets["srcaddrs6"] = _map_decl("srcaddrs6", "mark", "ipv6_addr")

    chains: dict[str, Chain] = {
        "nat-pre": Chain(
            _chain_decl(
                "nat-pre", type="nat", hook="prerouting", prio=PRIO_DSTNAT, policy="accept"
            ),
            (
                (
                    _family_vmap(
                        _meta("nfproto"),
                        {"ipv4": dispatch_chain_name(4), "ipv6": dispatch_chain_name(6)},
                    ),
                ),
            ),
        ),
        # One rule binds `slots` per chain (never one per farm: each element added to a
        # map walks every rule bound to it).
        "slot": Chain(_chain_decl("slot"), (_slot_statements(),)),
    }
    for family in (4, 6):
        # Most specific first; farm chains are entered with goto, so a farm that matched
        # never falls through to a less specific map.
        dispatch = tuple(
            (
                {
                    "vmap": {
                        "key": _dispatch_key(family, level),
                        "data": f"@{DISPATCH_MAPS[(family, level)]}",
                    }
                },
            )
            for level in DISPATCH_LEVELS
        )
        chains[dispatch_chain_name(family)] = Chain(
            _chain_decl(dispatch_chain_name(family)), dispatch
        )
        with_port, addr_only = _dnat_rules(family)
        chains[slot_dnat_chain_name(family)] = Chain(
            _chain_decl(slot_dnat_chain_name(family)),
            ((*_slot_statements(), *with_port), addr_only),
        )
        chains[dnat_chain_name(family)] = Chain(
            _chain_decl(dnat_chain_name(family)), (with_port, addr_only)
        )
    nat_post: list[tuple[Json, ...]] = [
        (
            {"match": {"op": "!=", "left": {"&": [_ct_mark(), MASQUERADE_BIT]}, "right": 0}},
            {"masquerade": None},
        )
    ]
    for family, src_map in ((4, "srcaddrs4"), (6, "srcaddrs6")):
        nat_post.append(
            (
                {"match": {"op": "!=", "left": {"&": [_ct_mark(), SNAT_BIT]}, "right": 0}},
                {
                    "snat": {
                        "family": _ip_proto(family),
                        "addr": {"map": {"key": _backend_of_ct_mark(), "data": f"@{src_map}"}},
                    }
                },
            )
        )
    chains["nat-post"] = Chain(
        _chain_decl("nat-post", type="nat", hook="postrouting", prio=PRIO_SRCNAT, policy="accept"),
        tuple(nat_post),
    )
    if ipds_on:
        ipds_rules: list[tuple[Json, ...]] = []
        for family in (4, 6):
            for level in DISPATCH_LEVELS:
                name = ipds_dispatch_map(DISPATCH_MAPS[(family, level)])
                ipds_rules.append(
                    ({"vmap": {"key": _dispatch_key(family, level), "data": f"@{name}"}},)
                )
                sets[name] = dataclasses.replace(
                    sets[DISPATCH_MAPS[(family, level)]],
                    decl={**sets[DISPATCH_MAPS[(family, level)]].decl, "name": name},
                )
        # IPDS: every packet to a protected farm, before scheduling (app/nft/ipds.py).
        chains[IPDS_CHAIN] = Chain(
            _chain_decl(
                IPDS_CHAIN,
                type="filter",
                hook="prerouting",
                prio=ipds.PRIO_IPDS,
                policy="accept",
            ),
            tuple(ipds_rules),
        )
    if drop_invalid:
        # A cluster node with conntrackd runs with nf_conntrack_tcp_loose=0: a mid-stream
        # packet with no conntrack entry is invalid instead of a new connection (which would be
        # scheduled afresh, maybe to another backend).  Such packets reach a new master in the
        # milliseconds between keepalived raising the VIP and the notify hook committing the
        # peer's connections (ha-notes §5.5): dropped here, they are retransmitted once the
        # entries are in; let through, the un-NATed packet would hit the local VIP (a reset).
        chains[GUARD_CHAIN] = Chain(
            _chain_decl(
                GUARD_CHAIN, type="filter", hook="prerouting", prio=PRIO_GUARD, policy="accept"
            ),
            (
                (
                    {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}},
                    {"drop": None},
                ),
            ),
        )
    return _qualify(Fragment(chains=chains, sets=sets, elements={}), FAMILY)


def _qualify(fragment: Fragment, family: str) -> Fragment:
    return Fragment(
        chains={qualified(family, k): v for k, v in fragment.chains.items()},
        sets={qualified(family, k): v for k, v in fragment.sets.items()},
        elements={qualified(family, k): v for k, v in fragment.elements.items()},
    )


# -- farms ---------------------------------------------------------------------------------


def hash_seed(farm_id: int) -> int:
    """A fixed seed per farm, so re-rendering never moves hashed flows (Knuth's multiplier)."""
    return (farm_id * 0x9E3779B1) & 0xFFFFFFFF


def source_of(farm: FarmSpec, backend: BackendSpec) -> str | None:
    if farm.nattype != "nat":
        return None
    return backend.source_addr or farm.source_addr


def ct_mark_of(farm: FarmSpec, backend: BackendSpec) -> int:
    """The conntrack mark of a connection to `backend`: its mark plus the NAT flag bits."""
    if farm.nattype != "nat":
        return backend.mark
    if source_of(farm, backend):
        return backend.mark | SNAT_BIT
    return backend.mark | MASQUERADE_BIT


def slot_table(farm: FarmSpec, chosen: tuple[BackendSpec, ...]) -> list[BackendSpec]:
    """The farm's slots, in order.

    - hash algorithms: a weighted rendezvous-hashing table (consistent: a backend failing or
      coming back moves only its own clients), of a fixed size;
    - leastconn: shares proportional to weight / (1 + connections);
    - weight, roundrobin: each backend `weight` times, in id order (a, a, b for 2/1).
    """
    if not chosen:
        return []
    if farm.algorithm in HASH_ALGORITHMS:
        size = table_size(len(farm.backends))
        table = build_table([(f"{farm.id}/{b.mark}", b.weight) for b in chosen], size)
        return [chosen[i] for i in table]
    if farm.algorithm == "leastconn":
        total = min(max(LEASTCONN_MIN_SLOTS, 8 * len(chosen)), SLOTS_PER_FARM)
        counts = leastconn_slots(chosen, total)
        return [b for b, n in zip(chosen, counts, strict=True) for _ in range(n)]
    return [b for b in chosen for _ in range(b.weight)]


def _persist_key(farm: FarmSpec) -> tuple[list[Json], list[str]]:
    ip = _ip_proto(farm.family)
    addr = _addr_type(farm.family)
    match farm.persistence:
        case "ip":
            return [_payload(ip, "saddr")], [addr]
        case "srcport":
            return [_payload("th", "sport")], ["inet_service"]
        case "srcmac":
            return [_payload("ether", "saddr")], ["ether_addr"]
        case "srcip_srcport":
            return [_payload(ip, "saddr"), _payload("th", "sport")], [addr, "inet_service"]
        case "srcip_dstport":
            return [_payload(ip, "saddr"), _payload("th", "dport")], [addr, "inet_service"]
    raise ValueError(f"unknown persistence {farm.persistence!r}")


def _scheduler(farm: FarmSpec, total: int) -> Json:
    offset = slot_offset(farm.id)
    ip = _ip_proto(farm.family)
    match farm.algorithm:
        case "roundrobin":
            return {"numgen": {"mode": "inc", "mod": total, "offset": offset}}
        case "hash_srcip":
            return {
                "jhash": {
                    "mod": total,
                    "seed": hash_seed(farm.id),
                    "offset": offset,
                    "expr": _payload(ip, "saddr"),
                }
            }
        case "hash_srcip_srcport":
            return {
                "jhash": {
                    "mod": total,
                    "seed": hash_seed(farm.id),
                    "offset": offset,
                    "expr": {"concat": [_payload(ip, "saddr"), _payload("th", "sport")]},
                }
            }
        case "symhash":
            return {"symhash": {"mod": total, "offset": offset}}
        case _:  # weight, leastconn (leastconn shapes the slots, not the expression)
            return {"numgen": {"mode": "random", "mod": total, "offset": offset}}


def _limited(farm: FarmSpec) -> list[BackendSpec]:
    return [b for b in sorted(farm.backends, key=lambda b: b.zapi_id) if b.max_conns > 0]


def _farm_rules(farm: FarmSpec, slots: list[BackendSpec]) -> tuple[tuple[Json, ...], ...]:
    if not slots:
        # Nothing can take the connection: refuse it now rather than let it hit the LB.
        return (({"reject": None},),)
    rules: list[tuple[Json, ...]] = []
    transports = HELPERS.get(farm.protocol)
    if transports is not None:
        for transport in transports:
            assign: Json = {"ct helper": helper_name(farm.id, transport)}
            if len(transports) > 1:
                proto_match = {"match": {"op": "==", "left": _meta("l4proto"), "right": transport}}
                rules.append((proto_match, assign))
            else:
                rules.append((assign,))
    limits = _limited(farm)
    # After a backend was chosen (ct mark set): the max_conns hard caps, then DNAT.  A nat
    # statement ends the evaluation, so scheduling jumps to `slot` and comes back only
    # where something must follow it (persistence update, limits).
    after: str = limit_chain_name(farm.id) if limits else dnat_chain_name(farm.family)
    tail: Json = {"goto": {"target": after}}
    if farm.persistence:
        key, _ = _persist_key(farm)
        elem = {"concat": [*key, _ct_mark()]}
        set_ref = f"@{persist_set_name(farm.id)}"
        chosen_marks = {b.mark for b in slots}
        for backend in sorted(farm.backends, key=lambda b: b.zapi_id):
            mark = ct_mark_of(farm, backend)
            if backend.mark in chosen_marks:
                # Honour a remembered backend only while it is schedulable.
                rules.append(
                    (
                        _set_ct_mark(mark),
                        {"match": {"op": "==", "left": elem, "right": set_ref}},
                        {"set": {"op": "update", "elem": elem, "set": set_ref}},
                        tail,
                    )
                )
            else:
                rules.append(
                    (_set_ct_mark(mark), {"set": {"op": "delete", "elem": elem, "set": set_ref}})
                )
        rules.append(_schedule_rule(farm, slots))
        rules.append(({"jump": {"target": "slot"}},))
        rules.append(({"set": {"op": "update", "elem": elem, "set": set_ref}}, tail))
    elif limits:
        rules.append(_schedule_rule(farm, slots))
        rules.append(({"jump": {"target": "slot"}},))
        rules.append((tail,))
    else:
        rules.append(_schedule_rule(farm, slots))
        rules.append(({"goto": {"target": slot_dnat_chain_name(farm.family)}},))
    return tuple(rules)


def _schedule_rule(farm: FarmSpec, slots: list[BackendSpec]) -> tuple[Json, ...]:
    """The slot key into the conntrack mark, alone in its rule.

    It is the only rule of a farm chain that a backend joining, leaving or changing weight
    alters (`mod N`), and it has no verdict, no map lookup and no packet-mark write: the
    kernel validates every chain of the table again at commit when a batch adds a rule with
    any of those (at 10,000 farms ~1.5 ms of CPU), so the reconciler replaces this one in
    place (`replace rule`, see app.nft.diff) and the commit skips the validation.  The
    verdict that follows is a rule of its own that never changes.
    """
    return (_set_ct_mark(_scheduler(farm, len(slots))),)


def _limit_rules(farm: FarmSpec) -> tuple[tuple[Json, ...], ...]:
    set_ref = f"@{conns_set_name(farm.id)}"
    caps = [
        (
            {"match": {"op": "==", "left": _ct_mark(), "right": ct_mark_of(farm, backend)}},
            {
                "set": {
                    "op": "add",
                    "elem": _ct_mark(),
                    "set": set_ref,
                    "stmt": [{"ct count": {"val": backend.max_conns, "inv": True}}],
                }
            },
            {"drop": None},
        )
        for backend in _limited(farm)
    ]
    return (*caps, ({"goto": {"target": dnat_chain_name(farm.family)}},))


def _dispatch_elements(farm: FarmSpec) -> dict[str, dict[str, tuple[Json, Json]]]:
    verdict = {"goto": {"target": farm_chain_name(farm.id)}}
    out: dict[str, dict[str, tuple[Json, Json]]] = {}

    def put(map_name: str, key: Json) -> None:
        out.setdefault(map_name, {})[canonical(key)] = (key, verdict)

    family = farm.family
    level = dispatch_level(farm)
    if level == "vip":
        put(DISPATCH_MAPS[(family, "vip")], farm.vip)
    elif level == "proto":
        for proto in transports_of(farm.protocol):
            put(DISPATCH_MAPS[(family, "proto")], {"concat": [proto, farm.vip]})
    else:
        assert farm.ports is not None
        for proto in transports_of(farm.protocol):
            for ports in farm.ports:
                if ports.is_single:
                    put(
                        DISPATCH_MAPS[(family, "ports")], {"concat": [proto, farm.vip, ports.first]}
                    )
                else:
                    key = {"concat": [proto, farm.vip, {"range": [ports.first, ports.last]}]}
                    put(DISPATCH_MAPS[(family, "ranges")], key)
    return out


def render_farm(farm: FarmSpec) -> Fragment:
    """The objects of one farm; a stopped farm has none."""
    if farm.stateless:
        return render_netdev_farm(farm)
    if not farm.running:
        return Fragment()
    slots = slot_table(farm, schedulable(farm.backends))
    chain = farm_chain_name(farm.id)
    chains = {chain: Chain(_chain_decl(chain), _farm_rules(farm, slots))}
    sets: dict[str, SetDecl] = {}
    if slots and _limited(farm):
        limit_chain = limit_chain_name(farm.id)
        chains[limit_chain] = Chain(_chain_decl(limit_chain), _limit_rules(farm))
        name = conns_set_name(farm.id)
        decl = {"family": FAMILY, "table": TABLE, "name": name, "type": "mark", "size": 65535}
        sets[name] = SetDecl("set", decl, dynamic=True)
    if farm.persistence:
        _, types = _persist_key(farm)
        name = persist_set_name(farm.id)
        sets[name] = SetDecl(
            "set",
            {
                "family": FAMILY,
                "table": TABLE,
                "name": name,
                "type": [*types, "mark"],
                "flags": ["timeout"],
                "timeout": farm.ttl,
                "size": PERSIST_SET_SIZE,
            },
            dynamic=True,
        )
    for transport in HELPERS.get(farm.protocol, ()):
        name = helper_name(farm.id, transport)
        helper = {
            "family": FAMILY,
            "table": TABLE,
            "name": name,
            "type": farm.protocol,
            "protocol": transport,
            "l3proto": "inet",
        }
        sets[name] = SetDecl("ct helper", helper, dynamic=True)
    elements = _dispatch_elements(farm)
    if ipds.applies(farm):
        _add_ipds(farm, chains, sets, elements)
    offset = slot_offset(farm.id)
    slot_elements = elements.setdefault("slots", {})
    for index, backend in enumerate(slots):
        key = offset + index
        slot_elements[canonical(key)] = (key, ct_mark_of(farm, backend))
    addr_map = "bea4" if farm.family == 4 else "bea6"
    src_map = "srcaddrs4" if farm.family == 4 else "srcaddrs6"
    for backend in farm.backends:
        mark = backend.mark
        elements.setdefault(addr_map, {})[canonical(mark)] = (mark, backend.ip)
        if backend.port is not None:
            elements.setdefault("bep", {})[canonical(mark)] = (mark, backend.port)
        source = source_of(farm, backend)
        if source:
            elements.setdefault(src_map, {})[canonical(mark)] = (mark, source)
    fragment = Fragment(chains=chains, sets=sets, elements={k: v for k, v in elements.items() if v})
    return _qualify(fragment, FAMILY)


def _add_ipds(
    farm: FarmSpec,
    chains: dict[str, Chain],
    sets: dict[str, SetDecl],
    elements: dict[str, dict[str, tuple[Json, Json]]],
) -> None:
    chain = ipds_chain_name(farm.id)
    chains[chain] = Chain(_chain_decl(chain), ipds.farm_rules(farm))
    meters, counters = ipds.farm_objects(farm)
    for name, decl in meters.items():
        sets[name] = SetDecl("set", decl, dynamic=True)
    for name, decl in counters.items():
        sets[name] = SetDecl("counter", decl, dynamic=True)
    verdict = {"goto": {"target": chain}}
    for map_name, items in list(_dispatch_elements(farm).items()):
        elements[ipds_dispatch_map(map_name)] = {
            key: (item[0], verdict) for key, item in items.items()
        }


def render_list(spec: ListSpec) -> ListFragment:
    """An IPDS list: one hash set per (family, prefix length) it holds, with its members."""
    sets: dict[str, SetDecl] = {}
    members: dict[str, frozenset[str]] = {}
    for (family, length), addrs in sorted(ipds.list_sets(spec).items()):
        tier = ipds.list_set_tier(len(addrs))
        name = qualified(FAMILY, ipds.list_set_name(spec.id, family, length, tier))
        sets[name] = SetDecl("set", ipds.list_set_decl(spec.id, family, length, tier))
        members[name] = addrs
    return ListFragment(sets=sets, members=members)


def list_shape(fragment: ListFragment) -> tuple[tuple[int, int, int], ...]:
    """(family, prefix length, size tier) of each set of a rendered list."""
    return tuple(sorted(ipds.list_set_key(split_name(name)[1]) for name in fragment.sets))


def ipds_on(farms: Iterable[FarmSpec]) -> bool:
    """Whether the IPDS base chain is needed: some farm has IPDS rules rendered."""
    return any(ipds.applies(f) for f in farms)


def netdev_devices(farms: Iterable[FarmSpec]) -> frozenset[str]:
    """The devices whose ingress kernlb hooks: those of running DSR/stateless farms."""
    return frozenset(f.device for f in farms if f.running and f.stateless and f.device)


def render(
    farms: list[FarmSpec], lists: Iterable[ListSpec] = (), *, drop_invalid: bool = False
) -> Ruleset:
    return Ruleset(
        skeleton=render_skeleton(
            netdev_devices(farms), ipds_on=ipds_on(farms), drop_invalid=drop_invalid
        ),
        farms={farm.id: render_farm(farm) for farm in sorted(farms, key=lambda f: f.id)},
        lists={spec.id: render_list(spec) for spec in sorted(lists, key=lambda s: s.id)},
    )


# -- netdev: DSR and stateless DNAT ------------------------------------------------------------
#
# No conntrack: every packet is scheduled, so the scheduler is always a function of the flow
# (seeded jhash into the farm's consistent slot table); `weight` means weighted slots.
#   dsr:            fwd ip to <backend address> device <dev>: the kernel's neighbour layer
#                   supplies the backend's MAC (never a stale or zero one); IPs untouched.
#   stateless_dnat: ip daddr set <backend>; fwd to it; replies (backend ip . port, looked up
#                   in `sret4`/`sret6`) get the VIP as source and are forwarded to the client.


def _render_netdev_skeleton(devices: frozenset[str]) -> Fragment:
    sets = _dispatch_map_decls(NETDEV)
    for family in (4, 6):
        addr = _addr_type(family)
        sets[f"dslots{family}"] = _map_decl(f"dslots{family}", "mark", addr, family=NETDEV)
        sets[f"sret{family}"] = _map_decl(
            f"sret{family}", [addr, "inet_service"], addr, ["interval"], family=NETDEV
        )
    chains: dict[str, Chain] = {}
    for device in sorted(devices):
        family_chains = {f: ingress_family_chain_name(device, f) for f in (4, 6)}
        for family, family_chain in family_chains.items():
            ip = _ip_proto(family)
            # Replies of stateless DNAT backends: restore the VIP, forward to the client.
            back = {"concat": [_payload(ip, "saddr"), _payload("th", "sport")]}
            stateless_return = (
                {
                    "mangle": {
                        "key": _payload(ip, "saddr"),
                        "value": {"map": {"key": back, "data": f"@sret{family}"}},
                    }
                },
                {"fwd": {"dev": device, "family": ip, "addr": _payload(ip, "daddr")}},
            )
            dispatch = [
                (
                    {
                        "vmap": {
                            "key": _dispatch_key(family, level),
                            "data": f"@{DISPATCH_MAPS[(family, level)]}",
                        }
                    },
                )
                for level in DISPATCH_LEVELS
            ]
            # Every packet of a DSR flow comes here: exact VIP:port farms (the common case)
            # first, then the replies of stateless farms, then the wildcard levels.
            rules = (dispatch[0], stateless_return, *dispatch[1:])
            chains[family_chain] = Chain(
                {"family": NETDEV, "table": TABLE, "name": family_chain}, rules
            )
        name = ingress_chain_name(device)
        decl = {
            "family": NETDEV,
            "table": TABLE,
            "name": name,
            "type": "filter",
            "hook": "ingress",
            "prio": 0,
            "policy": "accept",
            "dev": device,
        }
        by_ethertype = _family_vmap(
            _meta("protocol"), {"ip": family_chains[4], "ip6": family_chains[6]}
        )
        chains[name] = Chain(decl, ((by_ethertype,),))
    return _qualify(Fragment(chains=chains, sets=sets, elements={}), NETDEV)


def _flow_hash(farm: FarmSpec, total: int) -> Json:
    ip = _ip_proto(farm.family)
    if farm.algorithm == "hash_srcip" or farm.persistence == "ip":
        expr: Json = _payload(ip, "saddr")
    elif farm.persistence == "srcip_dstport":
        expr = {"concat": [_payload(ip, "saddr"), _payload("th", "dport")]}
    elif farm.persistence == "srcport":
        expr = _payload("th", "sport")
    else:
        expr = {"concat": [_payload(ip, "saddr"), _payload("th", "sport")]}
    return {
        "jhash": {
            "mod": total,
            "seed": hash_seed(farm.id),
            "offset": slot_offset(farm.id),
            "expr": expr,
        }
    }


def render_netdev_farm(farm: FarmSpec) -> Fragment:
    if not farm.running or not farm.device:
        return Fragment()
    chosen = schedulable(farm.backends)
    slots: list[BackendSpec] = []
    if chosen:
        size = table_size(len(farm.backends))
        table = build_table([(f"{farm.id}/{b.mark}", b.weight) for b in chosen], size)
        slots = [chosen[i] for i in table]
    ip = _ip_proto(farm.family)
    slot_map = f"@dslots{farm.family}"
    rules: tuple[tuple[Json, ...], ...]
    if not slots:
        rules = (({"drop": None},),)
    elif farm.nattype == "dsr":
        rules = (
            (
                _set_meta_mark(_flow_hash(farm, len(slots))),
                {
                    "fwd": {
                        "dev": farm.device,
                        "family": ip,
                        "addr": {"map": {"key": _meta("mark"), "data": slot_map}},
                    }
                },
            ),
        )
    else:
        rules = (
            (
                _set_meta_mark(_flow_hash(farm, len(slots))),
                {
                    "mangle": {
                        "key": _payload(ip, "daddr"),
                        "value": {"map": {"key": _meta("mark"), "data": slot_map}},
                    }
                },
                {"fwd": {"dev": farm.device, "family": ip, "addr": _payload(ip, "daddr")}},
            ),
        )
    chain = farm_chain_name(farm.id)
    decl = {"family": NETDEV, "table": TABLE, "name": chain}
    elements = _dispatch_elements(farm)
    offset = slot_offset(farm.id)
    slot_elements = elements.setdefault(f"dslots{farm.family}", {})
    for index, backend in enumerate(slots):
        slot_elements[canonical(offset + index)] = (offset + index, backend.ip)
    if farm.nattype == "stateless_dnat":
        ret = elements.setdefault(f"sret{farm.family}", {})
        port_ranges = farm.ports or (PortRange(1, 65535),)
        for backend in farm.backends:
            for ports in port_ranges:
                port: Json = (
                    ports.first if ports.is_single else {"range": [ports.first, ports.last]}
                )
                key = {"concat": [backend.ip, port]}
                ret[canonical(key)] = (key, farm.vip)
    fragment = Fragment(
        chains={chain: Chain(decl, rules)},
        sets={},
        elements={k: v for k, v in elements.items() if v},
    )
    return _qualify(fragment, NETDEV)
