"""dataplane.md §4.5-7 and §4.9: backend states, priority and persistence, with traffic."""

from __future__ import annotations

import time

import pytest

from .kernlb import Api
from .topology import CLIENT_IPS, VIP1
from .traffic import Client

pytestmark = pytest.mark.netns

DEAD = ("ConnectionResetError", "EOFError", "BrokenPipeError")


def test_down_backend_gets_no_new_connections_but_established_ones_flow(
    api: Api, client: Client
) -> None:
    # "down" comes from health checks; maintenance/drain is the same for the data plane.
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    held = client.hold(VIP1, 80, backend="b1")
    try:
        held.exchange()
        api.maintenance("web", ids["b1"], mode="drain")
        backends = {b["id"]: b["status"] for b in api.get_farm("web")["backends"]}
        assert backends[ids["b1"]] == "maintenance", backends

        counts = client.backends_of(VIP1, 80, 100)
        print(f"b1 drained: {dict(counts)}")
        assert counts == {"b2": 100}, counts
        for _ in range(3):
            held.exchange()  # established connection to b1 keeps exchanging data

        api.backend_up("web", ids["b1"])
        counts = client.backends_of(VIP1, 80, 100)
        print(f"b1 up again: {dict(counts)}")
        assert counts["b1"] >= 25, counts
        held.exchange()
    finally:
        held.close()


def test_drain_keeps_and_cut_kills_established_connections(api: Api, client: Client) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    first = client.hold(VIP1, 80, backend="b1")
    second = other = None
    try:
        api.maintenance("web", ids["b1"], mode="drain")
        assert first.exchange_outcome() == "alive", "drain dropped an established connection"
        api.backend_up("web", ids["b1"])

        second = client.hold(VIP1, 80, backend="b1")
        other = client.hold(VIP1, 80, backend="b2")
        started = time.monotonic()
        api.maintenance("web", ids["b1"], mode="cut")
        outcomes = [first.exchange_outcome(timeout=3), second.exchange_outcome(timeout=3)]
        elapsed = time.monotonic() - started
        print(f"after cut: held connections to b1 -> {outcomes} in {elapsed:.2f}s")
        for outcome in outcomes:
            assert outcome.startswith(DEAD), f"cut b1 left its connection {outcome!r}"
        assert other.exchange_outcome() == "alive", "cutting b1 broke a connection to b2"

        counts = client.backends_of(VIP1, 80, 60)
        assert counts == {"b2": 60}, counts
    finally:
        for conn in (first, second, other):
            if conn is not None:
                conn.close()


def test_priority_levels(api: Api, client: Client) -> None:
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {"priority": 1}, "b2": {"priority": 1}, "b3": {"priority": 2}},
    )

    counts = client.backends_of(VIP1, 80, 120)
    print(f"all up: {dict(counts)}")
    assert counts["b3"] == 0, f"priority-2 backend used while both priority-1 are up: {counts}"
    assert 30 <= counts["b1"] <= 90, counts

    api.maintenance("web", ids["b1"], mode="drain")
    counts = client.backends_of(VIP1, 80, 150)
    print(f"b1 unavailable: {dict(counts)}")
    assert counts["b1"] == 0, counts
    assert counts["b2"] >= 40 and counts["b3"] >= 40, f"expected b2 and b3 to share: {counts}"

    api.backend_up("web", ids["b1"])
    counts = client.backends_of(VIP1, 80, 120)
    print(f"b1 back: {dict(counts)}")
    assert counts["b3"] == 0, f"priority-2 backend used after b1 returned: {counts}"
    assert 30 <= counts["b1"] <= 90, counts


def _backends_per_client(client: Client, sources: tuple[str, ...]) -> dict[str, str]:
    return {src: client.hello(VIP1, 80, source=src).backend for src in sources}


def test_persistence_sticks_and_leaves_an_unavailable_backend(api: Api, client: Client) -> None:
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        persistence="ip",
        ttl=120,
    )
    src = CLIENT_IPS[8]
    first = [h.backend for h in client.sequence(VIP1, 80, 30, source=src)]
    print(f"client {src}: {first}")
    assert len(set(first)) == 1, f"persistence did not stick: {first}"
    sticky = first[0]

    # Persistence is per client, not one backend for everybody.
    spread = _backends_per_client(client, CLIENT_IPS[10:30])
    assert len(set(spread.values())) >= 2, spread
    assert _backends_per_client(client, CLIENT_IPS[10:30]) == spread, "other clients moved"

    api.maintenance("web", ids[sticky], mode="drain")
    outcome = client.attempt(VIP1, 80, source=src)
    assert outcome.hello is not None, f"next connection after {sticky} left failed: {outcome}"
    assert outcome.hello.backend != sticky
    assert outcome.elapsed < 0.9, f"next connection needed {outcome.elapsed:.2f}s (retransmit?)"

    after = [h.backend for h in client.sequence(VIP1, 80, 20, source=src)]
    print(f"client {src} after {sticky} drained: {outcome.hello.backend} then {after}")
    assert set(after) == {outcome.hello.backend}, f"client does not stick to its new one: {after}"


def test_persistence_expires_after_ttl_idle(api: Api, client: Client) -> None:
    api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        persistence="ip",
        ttl=2,
    )
    sources = CLIENT_IPS[10:30]
    before = _backends_per_client(client, sources)
    assert _backends_per_client(client, sources) == before, "persistence did not stick"
    time.sleep(4.5)
    after = _backends_per_client(client, sources)
    moved = [s for s in sources if after[s] != before[s]]
    print(f"after {4.5}s idle with ttl 2: {len(moved)}/{len(sources)} clients moved")
    # Rescheduled at random over 3 backends, about 2/3 of 20 clients move; P(< 3) ~ 1e-7.
    assert len(moved) >= 3, f"entries did not expire: {before} -> {after}"
