"""Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016), computed by kernlb.

The table maps M slots to backends.  Removing, failing or adding one backend changes only
about 1/N of the slots, and only slots of the backend concerned (plus the unavoidable
rebalancing share), so hashed clients of the other backends stay where they are.  Every
node computing the table from the same backend ids gets the same table.

The table size must not change with the backends (a new size rehashes every client), so it
is fixed: 1021 slots for farms of up to 100 configured backends, 4093 beyond (crossing that
threshold reshuffles once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

MAX_TABLE_SIZE = 4093  # largest prime below the 4096 slots each farm owns
TABLE_SIZE = 1021
LARGE_FARM = 100  # configured backends


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    factor = 3
    while factor * factor <= n:
        if n % factor == 0:
            return False
        factor += 2
    return True


def table_size(configured_backends: int) -> int:
    """The Maglev table size for a farm: fixed, so backend changes never resize it."""
    return TABLE_SIZE if configured_backends <= LARGE_FARM else MAX_TABLE_SIZE


def _hash(text: str, salt: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, salt=salt).digest(), "big")


def build_table(backends: Sequence[tuple[str, int]], size: int) -> list[int]:
    """Slot -> index into `backends` (a list of (stable key, weight)); empty input, empty table.

    Weighted population: in every round each backend takes `weight` turns, so its share of
    the table is proportional to its weight.
    """
    if not backends:
        return []
    if size < 2 or not _is_prime(size):
        raise ValueError("the Maglev table size must be a prime")
    offsets = [_hash(key, b"offset") % size for key, _ in backends]
    skips = [_hash(key, b"skip") % (size - 1) + 1 for key, _ in backends]
    cursor = [0] * len(backends)
    table = [-1] * size
    filled = 0
    while True:
        for index, (_, weight) in enumerate(backends):
            for _turn in range(max(weight, 1)):
                while True:
                    slot = (offsets[index] + cursor[index] * skips[index]) % size
                    cursor[index] += 1
                    if table[slot] < 0:
                        break
                table[slot] = index
                filled += 1
                if filled == size:
                    return table
