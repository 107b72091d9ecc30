"""IPDS in nftables: per-farm filtering before scheduling (pure, like render.py).

Layout (inet kernlb):
- base chain `ipds` (filter prerouting, priority -160: after conntrack, before `nat-pre`)
  looks every packet up in the verdict maps `idisp4*`/`idisp6*` (the same keys as the
  dispatcher) and jumps with `goto` to the chain `i-<farm id>` of farms that have IPDS rules.
  Every packet, not only new connections: RST floods and bogus flags arrive on established
  or invalid flows.  Farms without IPDS have no element there: other farms are unaffected.
- `i-<farm id>`: whitelists (drop what no allow list holds), blacklists, then the DoS rules.
  A `drop` is final; the end of the chain returns to the base chain's `accept`, and a
  new connection goes on to `nat-pre` (scheduling and DNAT).
- lists are interval sets `l-<list id>-4` / `l-<list id>-6`, global objects shared by the
  farms they are attached to; adding or removing a source is one element command.
- per-source meters are dynamic sets `m-<farm id>-<rule id>` of a fixed size.  When a meter
  is full the kernel cannot add a new source and the update statement does not match (it
  would fail open); the next rule catches exactly those sources (`saddr != @meter`) and puts
  them under one aggregate limit shared by all untracked sources.
- named counters `x-<farm id>-l<list id>`, `x-<farm id>-allow`, `x-<farm id>-d<rule id>`
  count what each list and rule dropped; they survive chain refills.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from app.domain.ipds import METER_TIMEOUT, DosSpec, ListRef, ListSpec
from app.domain.model import FarmSpec
from app.domain.ruleset import (
    FAMILY,
    TABLE,
    allow_counter_name,
    list_counter_name,
    meter_name,
    rule_counter_name,
)

Json = Any

PRIO_IPDS = -160
DISPATCH_PREFIX = "i"  # idisp4 ... beside disp4 ...

# Bogus TCP flag combinations: (mask, value); a packet with flags & mask == value is dropped.
BOGUS_TCP_FLAGS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("fin", "syn"), ("fin", "syn")),
    (("syn", "rst"), ("syn", "rst")),
    (("fin", "rst"), ("fin", "rst")),
    (("fin", "ack"), ("fin",)),
    (("psh", "ack"), ("psh",)),
    (("urg", "ack"), ("urg",)),
    (("fin", "syn", "rst", "psh", "ack", "urg"), ()),  # no flag at all
)


def _ip(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def _saddr(family: int) -> Json:
    return {"payload": {"protocol": _ip(family), "field": "saddr"}}


def _ct_new() -> Json:
    return {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}


def _counted_drop(counter: str) -> tuple[Json, Json]:
    return ({"counter": counter}, {"drop": None})


def _tcp_flags(mask: tuple[str, ...], value: tuple[str, ...]) -> Json:
    flags: Json = {"payload": {"protocol": "tcp", "field": "flags"}}
    right: Json = list(value) if len(value) > 1 else (value[0] if value else 0)
    mask_json: Json = list(mask) if len(mask) > 1 else mask[0]
    return {"match": {"op": "==", "left": {"&": [flags, mask_json]}, "right": right}}


def _limit(rate: int, burst: int) -> Json:
    """`limit rate over RATE/second burst BURST packets`: matches what is over the limit."""
    return {"limit": {"rate": rate, "per": "second", "burst": burst, "inv": True}}


def _dos_rules(farm: FarmSpec, dos: DosSpec) -> list[tuple[Json, ...]]:
    family = farm.family
    counter = rule_counter_name(farm.id, dos.id)
    meter = f"@{meter_name(farm.id, dos.id)}"
    untracked = {"match": {"op": "!=", "left": _saddr(family), "right": meter}}
    if dos.rule == "bogustcpflags":
        return [
            (_tcp_flags(mask, value), *_counted_drop(counter)) for mask, value in BOGUS_TCP_FLAGS
        ]
    if dos.rule == "limitfarmsec":
        return [(_ct_new(), _limit(dos.limit, dos.limit_burst), *_counted_drop(counter))]
    if dos.rule in ("limitsec", "limitrst"):
        when = _ct_new() if dos.rule == "limitsec" else _tcp_flags(("rst",), ("rst",))
        per_source = {
            "set": {
                "op": "update",
                "elem": _saddr(family),
                "set": meter,
                "stmt": [_limit(dos.limit, dos.limit_burst)],
            }
        }
        return [
            (when, per_source, *_counted_drop(counter)),
            # The meter was full: this source is not tracked; all such sources share one limit.
            (
                when,
                untracked,
                _limit(dos.aggregate_limit, dos.aggregate_burst),
                *_counted_drop(counter),
            ),
        ]
    if dos.rule == "limitconns":
        per_source = {
            "set": {
                "op": "add",
                "elem": _saddr(family),
                "set": meter,
                "stmt": [{"ct count": {"val": dos.limit_conns, "inv": True}}],
            }
        }
        return [
            (_ct_new(), per_source, *_counted_drop(counter)),
            (
                _ct_new(),
                untracked,
                {"ct count": {"val": dos.aggregate_limit, "inv": True}},
                *_counted_drop(counter),
            ),
        ]
    raise ValueError(f"unknown DoS rule {dos.rule!r}")


def _meter_decl(farm: FarmSpec, dos: DosSpec) -> dict[str, Json]:
    decl: dict[str, Json] = {
        "family": FAMILY,
        "table": TABLE,
        "name": meter_name(farm.id, dos.id),
        "type": "ipv4_addr" if farm.family == 4 else "ipv6_addr",
        "size": dos.meter_size,
    }
    if dos.rule != "limitconns":  # connection counts free themselves when connections close
        decl["flags"] = ["timeout"]
        decl["timeout"] = METER_TIMEOUT
    return decl


def applies(farm: FarmSpec) -> bool:
    """IPDS is rendered for running NAT-mode farms (netdev farms are refused by the API)."""
    return bool(farm.ipds) and farm.running and not farm.stateless


def farm_rules(farm: FarmSpec) -> tuple[tuple[Json, ...], ...]:
    family = farm.family
    rules: list[tuple[Json, ...]] = []
    allow = [ref for ref in farm.ipds.lists if ref.policy == "allow"]
    if allow:
        # In none of the allow lists' sets (no set at all: nobody is listed, all dropped).
        not_listed = [m for ref in allow for m in _list_matches(ref, family, "!=")]
        rules.append((*not_listed, *_counted_drop(allow_counter_name(farm.id))))
    for ref in farm.ipds.lists:
        if ref.policy == "deny":
            counted = _counted_drop(list_counter_name(farm.id, ref.id))
            rules.extend((listed, *counted) for listed in _list_matches(ref, family, "=="))
    for dos in farm.ipds.dos:
        rules.extend(_dos_rules(farm, dos))
    return tuple(rules)


def farm_objects(farm: FarmSpec) -> tuple[dict[str, dict[str, Json]], dict[str, dict[str, Json]]]:
    """(meters, counters) of one farm: declarations keyed by bare name."""
    meters = {
        meter_name(farm.id, dos.id): _meter_decl(farm, dos)
        for dos in farm.ipds.dos
        if dos.rule in ("limitconns", "limitrst", "limitsec")
    }
    counters: dict[str, dict[str, Json]] = {}
    names = [list_counter_name(farm.id, ref.id) for ref in farm.ipds.lists if ref.policy == "deny"]
    if any(ref.policy == "allow" for ref in farm.ipds.lists):
        names.append(allow_counter_name(farm.id))
    names.extend(rule_counter_name(farm.id, dos.id) for dos in farm.ipds.dos)
    for name in names:
        counters[name] = {"family": FAMILY, "table": TABLE, "name": name}
    return meters, counters


# -- lists ----------------------------------------------------------------------------------
#
# One plain hash set per (family, prefix length) present in the list, holding network
# addresses; a packet is looked up with its source masked to each length.  Not an interval
# set: libnftables 1.0.6 reads back every element of every interval set in the ruleset before
# any batch that adds or deletes an element, so one 100,000-entry interval set made every
# kernlb change take seconds (measured); hash sets are never read back.  Overlapping sources
# are fine (they live in different sets).


# From this many elements a list set is declared with a size: the kernel then picks its
# fixed-size hash instead of the resizable one, which it grows step by step while a large
# list loads (1,000,000 elements: 0.7-0.8 s instead of 1.8-2.1 s, measured).  A set's size
# is also its maximum: the size is in the set's name (`-s<log2 size>`, at least twice the
# elements), so a list that outgrows it moves to a new set in the same batch as the farms'
# rules that look it up, like a new prefix length.
SIZED_FROM = 65_536


def list_set_tier(count: int) -> int:
    """0 (no size) for small sets, else log2 of the declared size (>= twice `count`)."""
    return (2 * count - 1).bit_length() if count >= SIZED_FROM else 0


def list_set_name(list_id: int, family: int, length: int, tier: int = 0) -> str:
    base = f"l-{list_id}-{family}-{length}"
    return f"{base}-s{tier}" if tier else base


def list_set_key(name: str) -> tuple[int, int, int]:
    """(family, prefix length, tier) of a list set's bare name."""
    parts = name.split("-")
    return int(parts[2]), int(parts[3]), int(parts[4][1:]) if len(parts) > 4 else 0


def list_set_decl(list_id: int, family: int, length: int, tier: int = 0) -> dict[str, Json]:
    decl: dict[str, Json] = {
        "family": FAMILY,
        "table": TABLE,
        "name": list_set_name(list_id, family, length, tier),
        "type": "ipv4_addr" if family == 4 else "ipv6_addr",
    }
    if tier:
        decl["size"] = 1 << tier
    return decl


def list_sets(spec: ListSpec) -> dict[tuple[int, int], frozenset[str]]:
    """(family, prefix length) -> network addresses of the list."""
    found: dict[tuple[int, int], frozenset[str]] = {}
    for family, sources in spec.members.items():
        # Most entries of a large list are single addresses: taken in one pass, without
        # splitting each text (a 1,000,000-source list renders in a fraction of a second).
        hosts = frozenset(text for text in sources if "/" not in text)
        if hosts:
            found[(family, 32 if family == 4 else 128)] = hosts
        if len(hosts) == len(sources):
            continue
        # Networks, one prefix length at a time: string slices only (no tuple or list per
        # entry for the garbage collector to walk again and again).
        remaining = list(sources - hosts)
        while remaining:
            suffix = remaining[0][remaining[0].index("/") :]
            cut = len(suffix)
            group = [text[:-cut] for text in remaining if text.endswith(suffix)]
            found[(family, int(suffix[1:]))] = frozenset(group)
            if len(group) == len(remaining):
                break
            remaining = [text for text in remaining if not text.endswith(suffix)]
    return found


def _masked_saddr(family: int, length: int) -> Json:
    saddr = _saddr(family)
    if length == (32 if family == 4 else 128):
        return saddr
    mask = ipaddress.ip_network(f"{'0.0.0.0' if family == 4 else '::'}/{length}").netmask
    return {"&": [saddr, str(mask)]}


def _list_matches(ref: ListRef, family: int, op: str) -> list[Json]:
    return [
        {
            "match": {
                "op": op,
                "left": _masked_saddr(family, length),
                "right": f"@{list_set_name(ref.id, family, length, tier)}",
            }
        }
        for fam, length, tier in ref.shape
        if fam == family
    ]
