"""The diff step: which batch turns one ruleset into another (fake kernel, no I/O)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.domain.model import BackendSpec, FarmSpec, PortRange
from app.nft.adapter import NftError
from app.nft.diff import KernelSet, KernelSummary, diff, drift, expected_summary, inert, sync
from app.nft.fake import FakeNftAdapter
from app.nft.render import render


def backend(mark: int, zapi_id: int, **kw: object) -> BackendSpec:
    return BackendSpec(mark=mark, zapi_id=zapi_id, ip=f"198.18.2.{zapi_id + 1}", port=None, **kw)  # type: ignore[arg-type]


def farm(fid: int, port: int, **kw: object) -> FarmSpec:
    kw.setdefault("backends", (backend(fid * 10, 0), backend(fid * 10 + 1, 1)))
    return FarmSpec(id=fid, name=f"f{fid}", vip="198.18.0.10", ports=(PortRange(port, port),), **kw)  # type: ignore[arg-type]


BASE = [farm(1, 80, persistence="ip"), farm(2, 81), farm(3, 82)]


def kernel_with(farms: list[FarmSpec]) -> FakeNftAdapter:
    nft = FakeNftAdapter()
    nft.apply(sync(render(farms), None))
    return nft


def touched_names(batch: list[dict[str, object]]) -> str:
    return json.dumps(batch)


TRANSITIONS = {
    "add backend": [
        dataclasses.replace(BASE[0], backends=(*BASE[0].backends, backend(12, 2))),
        *BASE[1:],
    ],
    "add backend, no persistence": [
        BASE[0],
        dataclasses.replace(BASE[1], backends=(*BASE[1].backends, backend(22, 2))),
        BASE[2],
    ],
    "weight": [
        BASE[0],
        dataclasses.replace(BASE[1], backends=(backend(20, 0, weight=5), backend(21, 1))),
        BASE[2],
    ],
    "maintenance": [
        dataclasses.replace(BASE[0], backends=(backend(10, 0, maintenance=True), backend(11, 1))),
        *BASE[1:],
    ],
    "ports": [
        BASE[0],
        dataclasses.replace(BASE[1], ports=(PortRange(90, 90), PortRange(1000, 1100))),
        BASE[2],
    ],
    "algorithm": [*BASE[:2], dataclasses.replace(BASE[2], algorithm="hash_srcip")],
    "mode": [*BASE[:2], dataclasses.replace(BASE[2], nattype="dnat")],
    "persistence on": [BASE[0], dataclasses.replace(BASE[1], persistence="srcip_dstport"), BASE[2]],
    "persistence off": [dataclasses.replace(BASE[0], persistence=""), *BASE[1:]],
    "ttl": [dataclasses.replace(BASE[0], ttl=5), *BASE[1:]],
    "stop": [BASE[0], dataclasses.replace(BASE[1], running=False), BASE[2]],
    "delete": [BASE[0], BASE[2]],
    "create": [*BASE, farm(4, 83)],
    "all down": [
        BASE[0],
        dataclasses.replace(BASE[1], backends=(backend(20, 0, health="down"),)),
        BASE[2],
    ],
}


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_diff_reaches_the_same_state_as_a_full_load(name: str) -> None:
    new_farms = TRANSITIONS[name]
    nft = kernel_with(BASE)
    nft.apply(diff(render(BASE), render(new_farms)))
    reference = kernel_with(new_farms)
    assert nft.state.chains == reference.state.chains
    assert {k: v.elements for k, v in nft.state.sets.items()} == {
        k: v.elements for k, v in reference.state.sets.items()
    }
    assert drift(expected_summary(render(new_farms)), nft.summary()) == []


@pytest.mark.parametrize("name", sorted(set(TRANSITIONS) - {"create", "delete"}))
def test_diff_touches_only_the_changed_farm(name: str) -> None:
    new_farms = TRANSITIONS[name]
    changed = {f.id for f in new_farms if f not in BASE} | {
        f.id for f in BASE if f not in new_farms
    }
    batch = touched_names(diff(render(BASE), render(new_farms)))
    for fid in {1, 2, 3} - changed:
        assert f'"f-{fid}"' not in batch
        assert f'"p-{fid}"' not in batch
    assert '{"add": {"table"' not in batch
    for skeleton_chain in ("nat-pre", "nat-post", "dispatch4", "dispatch6"):
        assert f'"{skeleton_chain}"' not in batch


@pytest.mark.parametrize("name", ["add backend", "maintenance", "weight", "ports", "stop"])
def test_dynamic_sets_survive_unrelated_changes(name: str) -> None:
    batch = diff(render(BASE), render(TRANSITIONS[name]))
    for command in batch:
        ((verb, body),) = command.items()
        ((kind, obj),) = body.items()
        if kind == "set":
            pytest.fail(f"{verb} of set {obj['name']} in {name}")
        if verb == "flush":
            assert kind == "chain", command


def test_ttl_change_redefines_the_set_in_one_batch() -> None:
    batch = diff(render(BASE), render(TRANSITIONS["ttl"]))
    verbs = [(verb, kind) for c in batch for verb, body in c.items() for kind in body]
    assert ("delete", "set") in verbs and ("add", "set") in verbs
    assert verbs.index(("flush", "chain")) < verbs.index(("delete", "set"))


def test_no_change_no_commands() -> None:
    assert diff(render(BASE), render(list(BASE))) == []


def test_adding_a_backend_is_small() -> None:
    batch = diff(render(BASE), render(TRANSITIONS["add backend"]))
    verbs = [(verb, kind) for c in batch for verb, body in c.items() for kind in body]
    # refill one chain, add slot elements and one address element; nothing else
    assert verbs.count(("flush", "chain")) == 1
    assert ("add", "chain") not in verbs
    assert sorted(v for v in verbs if v != ("add", "rule")) == [
        ("add", "element"),
        ("add", "element"),
        ("flush", "chain"),
    ]


@pytest.mark.parametrize("name", ["add backend, no persistence", "weight"])
def test_a_backend_change_replaces_the_scheduling_rule_in_place(name: str) -> None:
    """No flush, no rule added: only the farm's inert `ct mark set numgen` rule is replaced
    (so the kernel does not re-validate every chain at commit), plus map elements."""
    batch = diff(render(BASE), render(TRANSITIONS[name]))
    verbs = {(verb, kind) for c in batch for verb, body in c.items() for kind in body}
    assert verbs <= {("replace", "rule"), ("add", "element"), ("delete", "element")}, verbs
    (replace,) = [c["replace"]["rule"] for c in batch if "replace" in c]
    assert replace["chain"] == "f-2" and replace["index"] == 0 and replace["rules"] == 2
    assert inert(replace["expr"])
    assert "numgen" in json.dumps(replace["expr"])


def test_a_replacement_fails_whole_when_the_chain_was_changed_by_someone_else() -> None:
    nft = kernel_with(BASE)
    nft.tamper(
        [
            {
                "add": {
                    "rule": {
                        "family": "inet",
                        "table": "kernlb",
                        "chain": "f-2",
                        "expr": [{"counter": None}],
                    }
                }
            }
        ]
    )
    before = nft.state.chains["inet/f-2"]
    with pytest.raises(NftError, match="f-2 holds 3 rules, 2 expected"):
        nft.apply(diff(render(BASE), render(TRANSITIONS["add backend, no persistence"])))
    assert nft.state.chains["inet/f-2"] == before
    assert "22" not in nft.elements("bea4")  # the new backend's address: not applied either


MARK = {"ct": {"key": "mark"}}
NUMGEN = {"numgen": {"mode": "random", "mod": 3, "offset": 8192}}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ([{"mangle": {"key": MARK, "value": NUMGEN}}], True),
        ([{"mangle": {"key": MARK, "value": {"symhash": {"mod": 3, "offset": 1}}}}], True),
        (
            [
                {
                    "mangle": {
                        "key": MARK,
                        "value": {
                            "jhash": {
                                "mod": 1021,
                                "seed": 7,
                                "offset": 1,
                                "expr": {
                                    "concat": [
                                        {"payload": {"protocol": "ip", "field": "saddr"}},
                                        {"payload": {"protocol": "th", "field": "sport"}},
                                    ]
                                },
                            }
                        },
                    }
                }
            ],
            False,  # libnftables adds a `meta nfproto` dependency to `ip saddr`
        ),
        # the kernel validates the table after adding any of these
        ([{"mangle": {"key": MARK, "value": NUMGEN}}, {"goto": {"target": "slot"}}], False),
        ([{"mangle": {"key": {"meta": {"key": "mark"}}, "value": NUMGEN}}], False),
        ([{"mangle": {"key": MARK, "value": {"map": {"key": MARK, "data": "@slots"}}}}], False),
        ([{"jump": {"target": "slot"}}], False),
        (
            [
                {
                    "mangle": {
                        "key": MARK,
                        "value": {"jhash": {"mod": 3, "expr": {"meta": {"key": "l4proto"}}}},
                    }
                }
            ],
            False,
        ),
        ([], False),
        ([{"reject": None}], False),
        ([{"match": {"op": "==", "left": MARK, "right": 1}}], False),
    ],
)
def test_only_rules_the_kernel_does_not_validate_are_inert(
    expr: list[object], expected: bool
) -> None:
    assert inert(expr) is expected


def test_sync_keeps_matching_dynamic_sets_and_drops_strays() -> None:
    state = render(BASE)
    summary = expected_summary(state)
    strays = KernelSummary(
        chains={**summary.chains, "inet/old-farm": 3},
        sets={
            **summary.sets,
            "inet/p-99": KernelSet(kind="set", type=["ipv4_addr", "mark"], timeout=9),
        },
    )
    batch = sync(state, strays)
    text = json.dumps(batch)
    assert '{"add": {"set": {"family": "inet", "table": "kernlb", "name": "p-1"' not in text
    assert {"delete": {"chain": {"family": "inet", "table": "kernlb", "name": "old-farm"}}} in batch
    assert {"delete": {"set": {"family": "inet", "table": "kernlb", "name": "p-99"}}} in batch
    assert {"flush": {"map": {"family": "inet", "table": "kernlb", "name": "disp4"}}} in batch


def test_sync_redeclares_a_dynamic_set_whose_definition_changed() -> None:
    state = render(BASE)
    summary = expected_summary(state)
    changed = KernelSummary(
        chains=summary.chains,
        sets={
            **summary.sets,
            "inet/p-1": KernelSet(kind="set", type=["ipv4_addr", "mark"], timeout=5),
        },
    )
    verbs = [
        (v, k, o.get("name"))
        for c in sync(state, changed)
        for v, b in c.items()
        for k, o in b.items()
    ]
    assert ("delete", "set", "p-1") in verbs and ("add", "set", "p-1") in verbs


def test_drift_reports_what_differs() -> None:
    state = render(BASE)
    nft = kernel_with(BASE)
    assert drift(expected_summary(state), nft.summary()) == []
    nft.apply([{"flush": {"chain": {"family": "inet", "table": "kernlb", "name": "f-2"}}}])
    nft.apply(
        [
            {
                "delete": {
                    "element": {
                        "family": "inet",
                        "table": "kernlb",
                        "name": "disp4",
                        "elem": [{"concat": ["tcp", "198.18.0.10", 82]}],
                    }
                }
            }
        ]
    )
    assert drift(expected_summary(state), nft.summary()) == [
        "chain inet/f-2 has 0 rules, expected 2",
        "map inet/disp4 has 2 elements, expected 3",
    ]
    assert drift(expected_summary(state), None) == [
        "table inet kernlb is missing",
        "table netdev kernlb is missing",
    ]
