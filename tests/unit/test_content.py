"""Drift by content: the comparison of a kernel listing with the applied ruleset (pure)."""

from __future__ import annotations

import struct

import pytest

from app.nft.content import content_drift, expected_content, kernel_content
from app.nft.fake import FakeNftAdapter
from app.nft.generation import parse_generation
from app.nft.render import render
from app.reconcile.reconciler import Reconciler
from tests.golden_cases import cases, load_state
from tests.unit.test_diff import BASE, kernel_with

MARK_1_SWAPPED = [
    {"delete": {"element": {"family": "inet", "table": "kernlb", "name": "bea4", "elem": [10]}}},
    {
        "add": {
            "element": {
                "family": "inet",
                "table": "kernlb",
                "name": "bea4",
                "elem": [[10, "198.18.2.9"]],
            }
        }
    },
]
ONE_SLOT = {"mangle": {"key": {"ct": {"key": "mark"}}, "value": 8192}}
FARM_2_TO_ONE_SLOT = [
    {"flush": {"chain": {"family": "inet", "table": "kernlb", "name": "f-2"}}},
    {
        "add": {
            "rule": {
                "family": "inet",
                "table": "kernlb",
                "chain": "f-2",
                "expr": [ONE_SLOT],
            }
        }
    },
    {
        "add": {
            "rule": {
                "family": "inet",
                "table": "kernlb",
                "chain": "f-2",
                "expr": [{"goto": {"target": "slot"}}],
            }
        }
    },
]


def differences(nft: FakeNftAdapter) -> list[str]:
    return Reconciler.differences(render(BASE), nft.listing())


@pytest.mark.parametrize("case", cases())
def test_a_fresh_load_has_no_differences(case: str) -> None:
    state = load_state(case)
    assert Reconciler.differences(render(state), kernel_with(state).listing()) == []


def test_a_swapped_backend_address_is_found_although_counts_agree() -> None:
    nft = kernel_with(BASE)
    nft.tamper(MARK_1_SWAPPED)
    assert differences(nft) == [
        'map inet/bea4 has unexpected elements [10,"198.18.2.9"]',
        'map inet/bea4 lacks elements [10,"198.18.2.1"]',
    ]


def test_a_rewritten_farm_chain_is_found_although_counts_agree() -> None:
    nft = kernel_with(BASE)
    nft.tamper(FARM_2_TO_ONE_SLOT)
    (problem,) = differences(nft)
    assert problem.startswith('chain inet/f-2 rule 1 is [{"mangle":{"key":{"ct":{"key":"mark"}}')
    assert '"value":8192}' in problem and '"numgen"' in problem


def test_dynamic_set_entries_are_not_drift() -> None:
    nft = kernel_with(BASE)  # farm 1 has persistence: set p-1 is filled by traffic
    persist = next(name for name, s in nft.state.sets.items() if s.decl.get("timeout"))
    family, _, name = persist.partition("/")
    entry = {"concat": ["198.18.1.1", 10]}
    nft.tamper(
        [{"add": {"element": {"family": family, "table": "kernlb", "name": name, "elem": [entry]}}}]
    )
    assert differences(nft) == []


def test_extra_and_missing_objects_are_named() -> None:
    nft = kernel_with(BASE)
    nft.tamper(
        [
            {"add": {"chain": {"family": "inet", "table": "kernlb", "name": "intruder"}}},
            {"delete": {"chain": {"family": "inet", "table": "kernlb", "name": "f-3"}}},
        ]
    )
    problems = differences(nft)
    assert "unexpected chain inet/intruder" in problems
    assert "chain inet/f-3 is missing" in problems


def test_kernel_spellings_are_read_back_as_kernlb_writes_them() -> None:
    mark = {"ct": {"key": "mark"}}
    listing = [
        {"table": {"family": "inet", "name": "kernlb"}},
        {"chain": {"family": "inet", "table": "kernlb", "name": "c"}},
        {
            "rule": {
                "family": "inet",
                "table": "kernlb",
                "chain": "c",
                "expr": [
                    {
                        "match": {
                            "op": "!=",
                            "left": mark,
                            "right": {"prefix": {"addr": 0, "len": 1}},
                        }
                    },
                    {"reject": {"expr": "port-unreachable", "type": "icmpx"}},
                ],
            }
        },
    ]
    (rule,) = kernel_content(listing).chains["inet/c"]
    assert rule == (
        '[{"match":{"left":{"&":[{"ct":{"key":"mark"}},2147483648]},"op":"!=","right":0}},'
        '{"reject":null}]'
    )


def test_content_of_an_applied_ruleset_matches_itself() -> None:
    ruleset = render(BASE)
    assert (
        content_drift(expected_content(ruleset), kernel_content(kernel_with(BASE).listing())) == []
    )


def test_generation_is_read_from_a_newgen_reply() -> None:
    # NFT_MSG_NEWGEN as this kernel answers it: id 2, pid 28784, process "python3".
    attrs = (
        struct.pack("=HH", 8, 1)
        + struct.pack(">I", 2)
        + struct.pack("=HH", 8, 2)
        + struct.pack(">I", 28784)
        + struct.pack("=HH", 12, 3)
        + b"python3\0"
    )
    body = struct.pack("=BBH", 0, 0, 0) + attrs
    reply = struct.pack("=IHHII", 16 + len(body), (10 << 8) | 15, 0, 1, 0) + body
    assert parse_generation(reply) == 2
    assert parse_generation(reply[:10]) is None
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + bytes(20)
    assert parse_generation(error) is None
