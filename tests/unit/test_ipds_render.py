"""IPDS rendering and diffs (pure): farm path, full-meter fallback, list element deltas."""

from __future__ import annotations

import dataclasses

from app.domain.ipds import DosSpec, IpdsSpec, ListRef, ListSpec, parse_source
from app.domain.model import BackendSpec, FarmSpec, PortRange
from app.nft.diff import diff
from app.nft.render import render, render_skeleton

FARM = FarmSpec(
    id=3,
    name="web",
    vip="198.18.0.10",
    ports=(PortRange(80, 80),),
    backends=(BackendSpec(mark=7, zapi_id=0, ip="198.18.2.1", port=80),),
)


def test_no_ipds_no_base_chain_and_no_cost() -> None:
    ruleset = render([FARM])
    assert "inet/ipds" not in ruleset.skeleton.chains
    assert ruleset.skeleton == render_skeleton()


def test_full_meter_sources_fall_under_the_aggregate_limit() -> None:
    dos = DosSpec(id=5, name="persec", rule="limitsec", limit=20, limit_burst=5, meter_size=4)
    farm = dataclasses.replace(FARM, ipds=IpdsSpec(dos=(dos,)))
    fragment = render([farm]).farms[3]
    rules = fragment.chains["inet/i-3"].rules
    assert len(rules) == 2
    tracked, untracked = rules
    update = tracked[1]["set"]
    assert update["op"] == "update" and update["set"] == "@m-3-5"
    assert update["stmt"] == [{"limit": {"rate": 20, "per": "second", "burst": 5, "inv": True}}]
    assert untracked[1] == {
        "match": {
            "op": "!=",
            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": "@m-3-5",
        }
    }
    # Default aggregate: ten times the per-source limit and burst.
    assert untracked[2] == {"limit": {"rate": 200, "per": "second", "burst": 50, "inv": True}}
    assert fragment.sets["inet/m-3-5"].decl["size"] == 4
    assert fragment.sets["inet/m-3-5"].dynamic
    assert render([farm]).skeleton.chains["inet/ipds"].decl["prio"] == -160


def test_whitelists_and_blacklists_order() -> None:
    lists = (
        ListRef(1, "bad", "deny", shape=((4, 24, 0), (4, 32, 0), (6, 64, 0))),
        ListRef(2, "good", "allow", shape=((4, 32, 0),)),
        ListRef(4, "ok2", "allow", shape=((4, 16, 0),)),
    )
    farm = dataclasses.replace(FARM, ipds=IpdsSpec(lists=lists))
    allow, deny24, deny32 = render([farm]).farms[3].chains["inet/i-3"].rules
    # Dropped only when in none of the allow lists' sets; counted apart from blacklist drops.
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
    assert allow == (
        {"match": {"op": "!=", "left": saddr, "right": "@l-2-4-32"}},
        {"match": {"op": "!=", "left": {"&": [saddr, "255.255.0.0"]}, "right": "@l-4-4-16"}},
        {"counter": "x-3-allow"},
        {"drop": None},
    )
    assert deny24[0]["match"] == {
        "op": "==",
        "left": {"&": [saddr, "255.255.255.0"]},
        "right": "@l-1-4-24",
    }
    assert deny32[0]["match"]["right"] == "@l-1-4-32" and deny32[1] == {"counter": "x-3-l1"}


def test_list_changes_are_element_deltas() -> None:
    before = ListSpec(
        id=1, name="bad", policy="deny", members={4: frozenset({"198.18.0.0/24", "198.18.0.9"})}
    )
    after = dataclasses.replace(
        before, members={4: frozenset({"198.18.1.1", "198.18.0.9"}), 6: frozenset({"2001:2::/48"})}
    )
    old, new = render([], [before]), render([], [after])
    ref = {"family": "inet", "table": "kernlb"}
    assert diff(old, new, farms=[], lists=[1]) == [
        {"add": {"set": {**ref, "name": "l-1-6-48", "type": "ipv6_addr"}}},
        {"delete": {"set": {**ref, "name": "l-1-4-24"}}},
        {"add": {"element": {**ref, "name": "l-1-4-32", "elem": ["198.18.1.1"]}}},
        {"add": {"element": {**ref, "name": "l-1-6-48", "elem": ["2001:2::"]}}},
    ]
    assert diff(new, new, farms=[], lists=[1]) == []


def test_sources_are_canonical_and_strict() -> None:
    assert parse_source("198.18.0.1").text == "198.18.0.1"
    assert parse_source("198.18.0.1/32").text == "198.18.0.1"
    assert parse_source("2001:2:0:0::/64").text == "2001:2::/64"
    for bad in ("198.18.0.1/24", "198.18.0.256", " 198.18.0.1", "fe80::1%eth0", "", "1.2.3.4/33"):
        try:
            parse_source(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_the_fast_ipv4_parser_agrees_with_ipaddress() -> None:
    import ipaddress
    import random

    rng = random.Random(14)
    cases = ["0.0.0.0/0", "01.2.3.4", "1.2.3", "1.2.3.4/024", "1.2.3.0/024", "1.2.3.4/+8"]
    for _ in range(5000):
        addr = ".".join(str(rng.randint(0, 255)) for _ in range(4))
        cases += [addr, f"{addr}/{rng.randint(0, 33)}", f"{addr.rsplit('.', 1)[0]}.0/24"]
    for value in cases:
        try:
            net = ipaddress.ip_network(value, strict=True)
            text = str(net.network_address) if net.prefixlen == 32 else str(net)
            want: object = (text, int(net.network_address), int(net.broadcast_address))
        except ValueError:
            want = None
        try:
            got = parse_source(value)
            have: object = (got.text, got.first, got.last)
        except ValueError:
            have = None
        assert have == want, value
