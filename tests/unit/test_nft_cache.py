"""Which batches leave libnftables' cache valid (app/nft/adapter.py: keeps_cache), and the
CacheKeeper's guards (pure parts; the kernel side is tests/kernel/test_nft_cache_reuse.py)."""

from __future__ import annotations

import ctypes

from app.nft.adapter import CacheKeeper, keeps_cache

T = {"family": "inet", "table": "kernlb"}
FLUSH_CHAIN = {"flush": {"chain": {**T, "name": "f-1"}}}
ADD_RULE = {"add": {"rule": {**T, "chain": "f-1", "expr": [{"accept": None}]}}}
ADD_ELEMENT = {"add": {"element": {**T, "name": "slots", "elem": [[4096, 7]]}}}
DELETE_ELEMENT = {"delete": {"element": {**T, "name": "disp4", "elem": [["x"]]}}}
NONE: frozenset[str] = frozenset()


def test_rules_and_plain_elements_keep_the_cache() -> None:
    assert keeps_cache([FLUSH_CHAIN, ADD_RULE, DELETE_ELEMENT, ADD_ELEMENT], NONE)
    assert keeps_cache([], NONE)


def test_objects_change_the_cache() -> None:
    for command in (
        {"add": {"chain": {**T, "name": "f-2"}}},
        {"delete": {"chain": {**T, "name": "f-2"}}},
        {"add": {"map": {**T, "name": "m", "type": "mark", "map": "mark"}}},
        {"delete": {"set": {**T, "name": "p-1"}}},
        {"flush": {"set": {**T, "name": "c-1"}}},
        {"add": {"table": {"family": "inet", "name": "kernlb"}}},
        {"add": {"ct helper": {**T, "name": "h-1-tcp"}}},
        {"delete": {"rule": {**T, "chain": "f-1", "handle": 4}}},
    ):
        assert not keeps_cache([ADD_RULE, command], NONE), command


def test_elements_of_interval_sets_change_the_cache() -> None:
    assert not keeps_cache([ADD_ELEMENT], frozenset({"inet/slots"}))
    assert keeps_cache([ADD_ELEMENT], frozenset({"netdev/slots"}))


def test_keeper_learns_interval_sets_from_declarations_and_listings() -> None:
    keeper = CacheKeeper(None)
    keeper.learn([{"add": {"map": {**T, "name": "disp4r", "flags": ["interval"]}}}])
    keeper.learn_listing([{"set": {"family": "netdev", "name": "sret4", "flags": "interval"}}])
    keeper.learn([{"add": {"map": {**T, "name": "disp4", "type": "x"}}}])
    assert keeper.interval_sets == {"inet/disp4r", "netdev/sret4"}


def test_keeper_writes_only_over_the_generation_it_expects() -> None:
    memory = (ctypes.c_uint32 * 64)()
    keeper = CacheKeeper(ctypes.addressof(memory))
    keeper.enabled = True
    keeper.library_version("9.9.9")  # a layout nobody checked: never written
    memory[50] = 7
    keeper.after_commit([ADD_RULE], 7, 8)
    assert (memory[50], keeper.reused) == (7, 0)
    keeper.offset = 200
    keeper.after_commit([ADD_RULE], 7, 9)  # someone else committed too
    keeper.after_commit([{"add": {"chain": {**T, "name": "f-9"}}}], 7, 8)  # not neutral
    memory[50] = 6
    keeper.after_commit([ADD_RULE], 7, 8)  # the cache was read at another generation
    assert (memory[50], keeper.reused) == (6, 0)
    memory[50] = 7
    keeper.after_commit([ADD_RULE], 7, 8)
    assert (memory[50], keeper.reused) == (8, 1)
    memory[50] = 0x1FFFF  # libnftables 1.0.6 compares the id's low 16 bits
    keeper.after_commit([ADD_RULE], 0x1FFFF, 0x20000)
    assert (memory[50], keeper.reused) == (0, 2)
