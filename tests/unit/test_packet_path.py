"""The shape of the per-packet path (docs/dataplane.md, "The per-packet path").

Properties of every golden ruleset, whatever the farms: established packets meet no kernlb rule
in the inet table (its only base chains are nat chains, which conntrack runs for a connection's
first packet; the IPDS filter chain exists only while a farm has IPDS rules), each hook splits
the families with one verdict map as its only rule, and the path of a new IPv4 connection never
reaches an IPv6 chain (nor the reverse).  Traffic tests prove the behaviours; this pins the shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.domain.ruleset import split_name
from app.nft.diff import _merged, inert
from app.nft.render import Chain, render
from tests.golden_cases import cases, load_state

Json = Any


def _chains(case: str) -> dict[str, Chain]:
    return _merged(render(load_state(case))).chains


def _targets(
    value: Json, elements: dict[str, dict[str, tuple[Json, Json]]], family: str
) -> Iterator[str]:
    """Every chain a rule can jump or go to: verdicts, anonymous and named verdict maps."""
    if isinstance(value, dict):
        for verdict in ("goto", "jump"):
            if verdict in value and isinstance(value[verdict], dict):
                yield value[verdict]["target"]
        vmap = value.get("vmap")
        if isinstance(vmap, dict) and isinstance(vmap["data"], str):
            named = elements.get(f"{family}/{vmap['data'].removeprefix('@')}", {})
            for _key, verdict in named.values():
                yield from _targets(verdict, elements, family)
        for item in value.values():
            yield from _targets(item, elements, family)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _targets(item, elements, family)


def _family_vmap(rule: tuple[Json, ...]) -> tuple[Json, dict[str, str]]:
    (statement,) = rule
    vmap = statement["vmap"]
    return vmap["key"], {key: verdict["goto"]["target"] for key, verdict in vmap["data"]["set"]}


def _reachable(case: str, family: str, start: str) -> set[str]:
    merged = _merged(render(load_state(case)))
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        chain = merged.chains.get(f"{family}/{name}")
        if chain is not None:
            todo.extend(_targets(chain.rules, merged.elements, family))
    return seen


def _farm_chains(case: str, ip_family: int) -> set[str]:
    return {f"f-{farm.id}" for farm in load_state(case) if farm.family == ip_family}


@pytest.mark.parametrize("case", cases())
def test_the_inet_table_hooks_only_nat_chains_but_ipds(case: str) -> None:
    hooks = {
        split_name(name)[1]: (chain.decl["type"], chain.decl["hook"])
        for name, chain in _chains(case).items()
        if name.startswith("inet/") and "hook" in chain.decl
    }
    hooks.pop("ipds", None)  # IPDS filters every packet by design, only while some farm has it
    assert hooks == {"nat-pre": ("nat", "prerouting"), "nat-post": ("nat", "postrouting")}


@pytest.mark.parametrize("case", cases())
def test_each_hook_splits_the_families_with_one_rule(case: str) -> None:
    chains = _chains(case)
    key, targets = _family_vmap(*chains["inet/nat-pre"].rules)
    assert key == {"meta": {"key": "nfproto"}}
    assert targets == {"ipv4": "dispatch4", "ipv6": "dispatch6"}
    for name, chain in chains.items():
        if name.startswith("netdev/") and chain.decl.get("hook") == "ingress":
            key, targets = _family_vmap(*chain.rules)
            assert key == {"meta": {"key": "protocol"}}
            assert set(targets) == {"ip", "ip6"}


@pytest.mark.parametrize("case", cases())
def test_a_new_connection_never_reaches_the_other_familys_chains(case: str) -> None:
    inet = {4: _reachable(case, "inet", "dispatch4"), 6: _reachable(case, "inet", "dispatch6")}
    for family, other in ((4, 6), (6, 4)):
        reached = inet[family]
        assert not reached & {f"dispatch{other}", f"slot-dnat{other}", f"dnat{other}"}, reached
        assert not reached & _farm_chains(case, other), reached
        assert _farm_chains(case, family) - _farm_chains(case, other) <= reached | {
            f"f-{farm.id}" for farm in load_state(case) if farm.stateless or not farm.running
        }
    for name, chain in _chains(case).items():
        if name.startswith("netdev/") and chain.decl.get("hook") == "ingress":
            _, targets = _family_vmap(*chain.rules)
            four = _reachable(case, "netdev", targets["ip"])
            six = _reachable(case, "netdev", targets["ip6"])
            assert not any(n.startswith("in6-") for n in four) and not four & _farm_chains(case, 6)
            assert not any(n.startswith("in4-") for n in six) and not six & _farm_chains(case, 4)


@pytest.mark.parametrize("case", cases())
def test_farm_chains_schedule_in_an_inert_rule_of_their_own(case: str) -> None:
    """The rule a backend change alters (`ct mark set numgen|jhash|symhash ...`) holds no
    verdict, lookup or packet-mark write, so it is replaced in place without the kernel
    validating the whole table; the verdict after it is a constant rule.  The inet table
    never writes the packet mark: the slot key travels in the conntrack mark."""
    chains = _chains(case)
    for name, chain in chains.items():
        family, bare = split_name(name)
        if family != "inet":
            continue
        assert '{"meta": {"key": "mark"}}, "value"' not in json.dumps(chain.rules), name
        if not bare.startswith("f-") or chain.rules == (({"reject": None},),):
            continue
        scheduling = [
            i
            for i, rule in enumerate(chain.rules)
            if len(rule) == 1
            and rule[0].get("mangle", {}).get("key") == {"ct": {"key": "mark"}}
            and set(rule[0]["mangle"]["value"]) & {"numgen", "jhash", "symhash"}
        ]
        assert len(scheduling) == 1, (name, chain.rules)
        (index,) = scheduling
        assert index + 1 < len(chain.rules), name  # a verdict follows, in a rule of its own
        (statement,) = chain.rules[index]
        assert inert(chain.rules[index]) == ("jhash" not in statement["mangle"]["value"])
