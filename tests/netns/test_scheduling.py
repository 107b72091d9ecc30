"""dataplane.md §4.1-2: weight and round-robin scheduling, proven by counting connections."""

from __future__ import annotations

from collections import Counter

import pytest

from .kernlb import Api
from .topology import VIP1
from .traffic import Client

pytestmark = pytest.mark.netns


def test_weight_5_5_splits_evenly(api: Api, client: Client) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {"weight": 5}, "b2": {"weight": 5}})
    assert api.get_farm("web")["params"]["algorithm"] == "weight"

    counts = client.backends_of(VIP1, 80, 200)
    print(f"weight 5/5, 200 connections: {dict(counts)}")
    # Binomial(200, 0.5): sd 7.1; 70..130 is beyond 4 sd.
    assert set(counts) == {"b1", "b2"}
    assert 70 <= counts["b1"] <= 130, counts


def test_weight_3_1_splits_75_25(api: Api, client: Client) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {"weight": 3}, "b2": {"weight": 1}})

    counts = client.backends_of(VIP1, 80, 400)
    print(f"weight 3/1, 400 connections: {dict(counts)}")
    # Binomial(400, 0.75): sd 8.7; 260..340 is beyond 4.5 sd, and excludes an even split.
    assert set(counts) == {"b1", "b2"}
    assert 260 <= counts["b1"] <= 340, counts


def test_roundrobin_equal_weights_alternates_exactly(api: Api, client: Client) -> None:
    api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {"weight": 1}, "b2": {"weight": 1}},
        algorithm="roundrobin",
    )

    names = [h.backend for h in client.sequence(VIP1, 80, 60)]
    print(f"roundrobin 1/1: {''.join(n[-1] for n in names)}")
    assert set(names) == {"b1", "b2"}
    repeats = [i for i in range(1, len(names)) if names[i] == names[i - 1]]
    assert not repeats, f"same backend twice in a row at positions {repeats}: {names}"


def test_roundrobin_weights_2_1_repeat_a_a_b(api: Api, client: Client) -> None:
    api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {"weight": 2}, "b2": {"weight": 1}},
        algorithm="roundrobin",
    )

    names = [h.backend for h in client.sequence(VIP1, 80, 90)]
    print(f"roundrobin 2/1: {''.join(n[-1] for n in names)}")
    assert Counter(names[:3]) == {"b1": 2, "b2": 1}, names
    breaks = [i for i in range(3, len(names)) if names[i] != names[i - 3]]
    assert not breaks, f"pattern is not a period-3 a,a,b cycle (breaks at {breaks}): {names}"
    assert Counter(names) == {"b1": 60, "b2": 30}
