from __future__ import annotations

from collections import Counter

import pytest

from app.domain.consistent import build_table, table_size


def backends(n: int, weights: list[int] | None = None) -> list[tuple[str, int]]:
    return [(f"farm1/{i}", (weights or [1] * n)[i]) for i in range(n)]


@pytest.mark.parametrize(
    ("n", "size"), [(1, 1021), (2, 1021), (3, 1021), (100, 1021), (101, 4093), (1000, 4093)]
)
def test_table_size_does_not_follow_the_backend_count(n: int, size: int) -> None:
    assert table_size(n) == size


def test_equal_weights_share_the_table_evenly() -> None:
    table = build_table(backends(4), 1021)
    counts = Counter(table)
    assert set(counts) == {0, 1, 2, 3}
    for count in counts.values():
        assert count / 1021 == pytest.approx(0.25, abs=0.04)


def test_weights_are_respected() -> None:
    counts = Counter(build_table(backends(2, [3, 1]), 1021))
    assert counts[0] / 1021 == pytest.approx(0.75, abs=0.02)


def test_the_table_is_deterministic() -> None:
    assert build_table(backends(5), 1021) == build_table(backends(5), 1021)


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_removing_one_backend_moves_only_its_slots_and_about_one_nth(n: int) -> None:
    size = table_size(n)
    before = build_table(backends(n), size)
    keys = backends(n)
    removed = keys[1][0]
    remaining = [k for k in keys if k[0] != removed]
    after_idx = build_table(remaining, size)
    before_keys = [keys[i][0] for i in before]
    after_keys = [remaining[i][0] for i in after_idx]
    moved = sum(1 for b, a in zip(before_keys, after_keys, strict=True) if b != a)
    moved_from_others = sum(
        1 for b, a in zip(before_keys, after_keys, strict=True) if b != a and b != removed
    )
    assert moved / size < 1 / n + 0.05
    # rendezvous hashing is minimal: no slot of an untouched backend changes hands
    assert moved_from_others == 0


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_adding_a_backend_moves_about_one_nth(n: int) -> None:
    size = table_size(n + 1)
    assert size == table_size(n)
    old = backends(n)
    new = backends(n + 1)
    before = [old[i][0] for i in build_table(old, size)]
    after = [new[i][0] for i in build_table(new, size)]
    moved = sum(1 for b, a in zip(before, after, strict=True) if b != a)
    assert moved / size < 1 / (n + 1) + 0.05
    # and they move to the new backend, never between the old ones
    between_old = sum(1 for b, a in zip(before, after, strict=True) if b != a and a != new[n][0])
    assert between_old == 0


def test_empty_and_invalid() -> None:
    assert build_table([], 1021) == []
    with pytest.raises(ValueError):
        build_table(backends(2), 0)
