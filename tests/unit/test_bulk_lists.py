"""Large IPDS list loads: which commands go through nfnetlink, and the rollbacks (no kernel)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from app.domain.ipds import ListSpec
from app.nft.bulk import apply_in_steps, inverse, split_bulk
from app.nft.diff import diff, expected_summary, sync
from app.nft.fake import FakeNftAdapter
from app.nft.ipds import SIZED_FROM, list_set_tier, list_sets
from app.nft.netlink_elements import ElementOp
from app.nft.render import Ruleset, list_shape, render_list, render_skeleton
from app.reconcile.reconciler import ListChange, Reconciler

SKELETON = render_skeleton()
EMPTY = Ruleset(skeleton=SKELETON, farms={})


def big_list(n: int, *, first: int = 0) -> ListSpec:
    hosts = {f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(first, first + n)}
    return ListSpec(
        id=7,
        name="big",
        policy="deny",
        members={4: frozenset({*hosts, "192.0.2.0/24"}), 6: frozenset({"2001:db8::/32"})},
    )


def with_list(spec: ListSpec) -> Ruleset:
    return Ruleset(skeleton=SKELETON, farms={}, lists={spec.id: render_list(spec)})


def test_list_sets_group_by_prefix_length() -> None:
    spec = ListSpec(
        id=1,
        name="l",
        policy="deny",
        members={
            4: frozenset({"10.0.0.1", "10.0.0.0/30", "10.0.0.4/30", "10.0.0.0/3", "10.1.0.0/16"}),
            6: frozenset({"2001:db8::1", "2001:db8::/32"}),
        },
    )
    assert list_sets(spec) == {
        (4, 32): frozenset({"10.0.0.1"}),
        (4, 30): frozenset({"10.0.0.0", "10.0.0.4"}),
        (4, 3): frozenset({"10.0.0.0"}),
        (4, 16): frozenset({"10.1.0.0"}),
        (6, 128): frozenset({"2001:db8::1"}),
        (6, 32): frozenset({"2001:db8::"}),
    }


def test_small_batches_stay_in_one_transaction() -> None:
    batch = diff(EMPTY, with_list(big_list(100)), farms=[], lists=[7])
    assert split_bulk(batch) is None
    assert split_bulk(batch, minimum=50) is not None


def test_a_large_load_moves_only_list_elements() -> None:
    batch = diff(EMPTY, with_list(big_list(20_000)), farms=[], lists=[7])
    split = split_bulk(batch)
    assert split is not None
    assert split.count == 20_002
    # step 1 declares the three sets; nothing else goes before the elements
    assert [c["add"]["set"]["name"] for c in split.first] == ["l-7-4-24", "l-7-4-32", "l-7-6-32"]
    assert split.created == [
        {"family": "inet", "table": "kernlb", "name": n}
        for n in ("l-7-4-24", "l-7-4-32", "l-7-6-32")
    ]
    assert split.rest == []
    by_set = {op.set: op for op in split.elements}
    assert by_set["l-7-4-24"].elements == [socket.inet_pton(socket.AF_INET, "192.0.2.0")]
    assert by_set["l-7-6-32"].elements == [socket.inet_pton(socket.AF_INET6, "2001:db8::")]
    assert len(by_set["l-7-4-32"].elements) == 20_000
    assert {op.verb for op in split.elements} == {"add"}


def test_a_reload_deletes_and_adds_in_one_element_batch() -> None:
    before = with_list(big_list(20_000))
    after = with_list(big_list(20_000, first=10_000))
    split = split_bulk(diff(before, after, farms=[], lists=[7]))
    assert split is not None
    assert split.first == [] and split.created == []
    assert [(op.verb, op.set, len(op.elements)) for op in split.elements] == [
        ("delete", "l-7-4-32", 10_000),
        ("add", "l-7-4-32", 10_000),
    ]


def test_sync_flushes_and_refills_list_sets_through_netlink() -> None:
    loaded = with_list(big_list(20_000))
    split = split_bulk(sync(loaded, expected_summary(loaded)))  # the sets exist: refilled
    assert split is not None
    assert all("table" in c["add"] or "set" in c["add"] for c in split.first)
    assert any("chain" in c.get("add", {}) for c in split.rest)  # the skeleton stays
    ops = [(op.verb, op.set) for op in split.elements]
    assert ops.index(("flush", "l-7-4-32")) < ops.index(("add", "l-7-4-32"))
    leftover = [json.dumps(c) for c in split.rest if '"l-7-' in json.dumps(c)]
    assert leftover == []  # every list set command went to steps 1 and 2


def test_a_set_deleted_in_the_batch_keeps_its_elements_in_libnftables() -> None:
    ref = {"family": "inet", "table": "kernlb", "name": "l-7-4-32"}
    batch: list[dict[str, Any]] = [
        {"delete": {"set": ref}},
        {"add": {"set": {**ref, "type": "ipv4_addr"}}},
        {"add": {"element": {**ref, "elem": [f"10.0.{i >> 8}.{i & 255}" for i in range(20_000)]}}},
    ]
    assert split_bulk(batch) is None


def test_inverse_undoes_in_reverse_order() -> None:
    ops = [
        ElementOp("delete", "inet", "kernlb", "s", [b"\1\1\1\1"]),
        ElementOp("add", "inet", "kernlb", "s", [b"\2\2\2\2"]),
    ]
    assert inverse(ops) == [
        ElementOp("delete", "inet", "kernlb", "s", [b"\2\2\2\2"]),
        ElementOp("add", "inet", "kernlb", "s", [b"\1\1\1\1"]),
    ]
    assert inverse([ElementOp("flush", "inet", "kernlb", "s"), *ops]) is None


class Refused(Exception):
    pass


def steps(fail: str | None) -> tuple[list[str], list[str]]:
    split = split_bulk(diff(EMPTY, with_list(big_list(20_000)), farms=[], lists=[7]))
    assert split is not None
    split.rest = [{"add": {"rule": {"chain": "x"}}}]
    log: list[str] = []
    problems: list[str] = []

    def apply(commands: list[dict[str, Any]]) -> None:
        kind = "rules" if commands is split.rest else next(iter(commands[0].keys()))
        if fail == kind:
            raise Refused(kind)
        log.append(f"nft {kind}")

    def write(ops: list[ElementOp]) -> None:
        verbs = sorted({op.verb for op in ops})
        if fail == "elements" and verbs == ["add"]:
            raise Refused("elements")
        log.append(f"netlink {'+'.join(verbs)}")

    try:
        apply_in_steps(split, apply=apply, write=write, undo_failed=problems.append)
    except Refused as exc:
        log.append(f"refused {exc}")
    return log, problems


def test_steps_in_order_when_all_succeed() -> None:
    assert steps(None) == (["nft add", "netlink add", "nft rules"], [])


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        ("add", ["refused add"]),
        ("elements", ["nft add", "nft delete", "refused elements"]),
        ("rules", ["nft add", "netlink add", "netlink delete", "nft delete", "refused rules"]),
    ],
)
def test_a_refused_step_undoes_the_previous_ones(fail: str, expected: list[str]) -> None:
    log, problems = steps(fail)
    assert log == expected
    assert problems == []


def hosts_list(n: int) -> ListSpec:
    hosts = frozenset(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n))
    return ListSpec(id=7, name="big", policy="deny", members={4: hosts})


def test_large_list_sets_are_sized_and_named_by_their_size() -> None:
    small = render_list(hosts_list(SIZED_FROM - 1))
    assert list(small.sets) == ["inet/l-7-4-32"]
    assert "size" not in small.sets["inet/l-7-4-32"].decl
    big = render_list(hosts_list(SIZED_FROM))
    assert list(big.sets) == ["inet/l-7-4-32-s17"]
    assert big.sets["inet/l-7-4-32-s17"].decl["size"] == 2 * SIZED_FROM
    assert list_shape(big) == ((4, 32, 17),)
    assert list_set_tier(500_000) == 20  # 1,048,576 >= 2 x 500,000


@pytest.mark.parametrize(
    ("before", "added", "removed"),
    [
        (SIZED_FROM - 1, {"10.255.0.1"}, set()),  # grows into a sized set
        (SIZED_FROM, set(), {"10.0.0.0"}),  # shrinks out of it
        (SIZED_FROM + 5, {"10.255.0.1"}, {"10.0.0.0"}),  # stays
    ],
)
def test_one_source_across_a_size_tier_gives_what_a_full_render_gives(
    before: int, added: set[str], removed: set[str]
) -> None:
    spec = hosts_list(before)
    reconciler = Reconciler(adapter=FakeNftAdapter(), session_factory=lambda: None)  # type: ignore[arg-type, return-value]
    reconciler._applied = with_list(spec)
    staged = reconciler._stage_lists(None, {7: ListChange(added=added, removed=removed)})  # type: ignore[arg-type]
    after = ListSpec(
        id=7, name="big", policy="deny", members={4: (spec.members[4] | added) - removed}
    )
    assert staged[7] == render_list(after)
