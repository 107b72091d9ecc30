"""Consistent slot tables: weighted rendezvous (highest-random-weight) hashing per slot.

Each of the farm's M slots goes to the backend with the highest score
`weight / -ln(u)`, where `u` is a uniform hash of (slot, backend).  Hence:
- removing or failing a backend moves exactly its own slots, nothing else;
- adding one takes slots only from the others, about 1/N of them, in proportion to weight;
- every node computing the table from the same backend keys gets the same table.

Packets pick a slot by hashing the flow (or the client address) with a fixed seed; the table
size never changes with the backends (a new size would rehash every client): 1021 slots for
farms of up to 100 configured backends, 4093 beyond (crossing that threshold reshuffles once).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

TABLE_SIZE = 1021
MAX_TABLE_SIZE = 4093  # largest prime below the 4096 slots each farm owns
LARGE_FARM = 100  # configured backends
_MASK64 = (1 << 64) - 1


def table_size(configured_backends: int) -> int:
    """The slot table size for a farm: fixed, so backend changes never resize it."""
    return TABLE_SIZE if configured_backends <= LARGE_FARM else MAX_TABLE_SIZE


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _mix(value: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def build_table(backends: Sequence[tuple[str, int]], size: int) -> list[int]:
    """Slot -> index into `backends` (a list of (stable key, weight)); no backends, no table."""
    if not backends:
        return []
    if size < 1:
        raise ValueError("the slot table needs at least one slot")
    keys = [_key_hash(key) for key, _ in backends]
    weights = [max(weight, 1) for _, weight in backends]
    table = []
    for slot in range(size):
        best, best_score = 0, -1.0
        salt = _mix(slot)
        for index, key in enumerate(keys):
            uniform = (_mix(key ^ salt) + 0.5) / 2.0**64  # in (0, 1)
            score = weights[index] / -math.log(uniform)
            if score > best_score:
                best, best_score = index, score
        table.append(best)
    return table
