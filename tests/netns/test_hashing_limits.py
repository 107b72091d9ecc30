"""dataplane.md §4.8 (hash schedulers, consistent hashing) and §4.10 (max_conns)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .kernlb import Api
from .topology import BACKEND_IPS, CLIENT_IPS, VIP1
from .traffic import Client, HeldConnection

pytestmark = pytest.mark.netns


def _mapping(client: Client, sources: tuple[str, ...] = CLIENT_IPS) -> dict[str, str]:
    return {src: client.hello(VIP1, 80, source=src).backend for src in sources}


def _moves(before: dict[str, str], after: dict[str, str]) -> Counter[tuple[str, str]]:
    return Counter((before[s], after[s]) for s in before if before[s] != after[s])


def test_hash_srcip_pins_each_client_and_srcport_spreads(api: Api, client: Client) -> None:
    api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        algorithm="hash_srcip",
    )
    per_client = {
        src: Counter(h.backend for h in client.sequence(VIP1, 80, 5, source=src))
        for src in CLIENT_IPS[:20]
    }
    split = {src: dict(c) for src, c in per_client.items() if len(c) > 1}
    assert not split, f"hash_srcip split clients over backends: {split}"
    overall = Counter(next(iter(c)) for c in per_client.values())
    print(f"hash_srcip, 20 clients x 5: clients per backend {dict(overall)}")
    assert len(overall) >= 2, overall

    api.edit_farm("web", algorithm="hash_srcip_srcport")
    counts = Counter(h.backend for h in client.sequence(VIP1, 80, 150, source=CLIENT_IPS[0]))
    print(f"hash_srcip_srcport, one client x 150: {dict(counts)}")
    assert set(counts) == {"b1", "b2", "b3"} and min(counts.values()) >= 25, counts


def test_hash_srcip_failing_a_backend_moves_only_its_clients(api: Api, client: Client) -> None:
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        algorithm="hash_srcip",
    )
    three = _mapping(client)
    assert _mapping(client) == three, "hash_srcip is not stable between identical rounds"

    api.maintenance("web", ids["b3"], mode="drain")
    failed = _mapping(client)
    moves = _moves(three, failed)
    print(f"40 clients {dict(Counter(three.values()))}; b3 unavailable: moves {dict(moves)}")
    assert "b3" not in failed.values()
    untouched_moved = sum(n for (a, _), n in moves.items() if a != "b3")
    assert untouched_moved <= 2, f"failing b3 moved clients of b1/b2: {dict(moves)}"

    api.backend_up("web", ids["b3"])
    assert _mapping(client) == three, "b3 back up: clients did not return to the same mapping"


def test_hash_srcip_adding_a_backend_moves_about_one_nth(api: Api, client: Client) -> None:
    api.setup_farm(
        "web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}}, algorithm="hash_srcip"
    )
    two = _mapping(client)

    api.add_backend("web", BACKEND_IPS["b3"])
    three = _mapping(client)
    moves = _moves(two, three)
    print(f"add b3 to b1,b2 (40 clients): {dict(Counter(three.values()))}; moves {dict(moves)}")
    # Consistent hashing: about 1/3 of the clients move, all of them to b3.
    between_old = sum(n for (_, b), n in moves.items() if b != "b3")
    assert between_old <= 2, f"adding b3 moved clients between b1 and b2: {dict(moves)}"
    assert sum(moves.values()) <= 20, f"adding b3 moved too many clients: {dict(moves)}"


def test_max_conns_caps_concurrent_connections(api: Api, client: Client) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {"max_conns": 2}, "b2": {}})
    held: list[HeldConnection] = []
    try:
        for _ in range(40):  # bounded: fill b1 up to its limit
            held.append(client.executor.run(HeldConnection.open, VIP1, 80, timeout=8.0))
            if sum(c.hello.backend == "b1" for c in held) == 2:
                break
        assert sum(c.hello.backend == "b1" for c in held) == 2, "could not reach b1 twice"

        def timed_open() -> tuple[HeldConnection, float]:
            started = time.monotonic()
            conn = HeldConnection.open(VIP1, 80, timeout=8.0)
            return conn, time.monotonic() - started

        more = client.executor.map_all([timed_open for _ in range(30)], timeout=60)
        held += [conn for conn, _ in more]
        slow = sum(elapsed > 0.9 for _, elapsed in more)
        counts = Counter(c.hello.backend for c in held)
        print(f"b1 at max_conns 2, 30 more held connections: {dict(counts)}; {slow} needed >0.9s")
        assert counts["b1"] == 2, f"b1 went over max_conns 2: {dict(counts)}"
        for conn in held:
            conn.exchange()

        for conn in [c for c in held if c.hello.backend == "b1"]:
            conn.close()
            held.remove(conn)
        started = time.monotonic()
        reached = False
        while not reached and time.monotonic() < started + 10:
            conn = client.executor.run(HeldConnection.open, VIP1, 80, timeout=8.0)
            held.append(conn)
            reached = conn.hello.backend == "b1"
        assert reached, "b1 got no connection within 10s after its connections closed"
        print(f"b1's connections closed: b1 reached again after {time.monotonic() - started:.1f}s")
    finally:
        for conn in held:
            conn.close()


def _probe(client: Client, n: int) -> list[tuple[str, float]]:
    """``n`` connections one after another, each closed at once: (backend or error, seconds)."""

    def run() -> list[tuple[str, float]]:
        out = []
        for _ in range(n):
            started = time.monotonic()
            try:
                conn = HeldConnection.open(VIP1, 80, timeout=8.0)
            except OSError as exc:  # e.g. a SYN dropped 4 times: timed out
                out.append((type(exc).__name__, round(time.monotonic() - started, 1)))
                continue
            out.append((conn.hello.backend, round(time.monotonic() - started, 1)))
            conn.close()
            time.sleep(0.1)  # let it reach TIME_WAIT: a closing connection still counts
        return out

    return client.executor.run(run)


def test_max_conns_backend_takes_connections_again_once_its_own_close(
    api: Api, client: Client
) -> None:
    """A capped backend whose own connections closed must get new ones again (within a load
    refresh), whatever other backends are holding.

    Connections refused by b1's cap (their SYN dropped) are retried by the client with the same
    addresses and ports and then land on b2. They must not keep counting against b1.
    """
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {"max_conns": 2}, "b2": {}})
    held = [client.hold(VIP1, 80, backend="b1"), client.hold(VIP1, 80, backend="b1")]
    try:
        # b1 is at its cap: concurrent connections that get scheduled to b1 before kernlb sees
        # it full are dropped by the hard cap, retried 1 s later, and served by b2.
        def timed_open() -> tuple[HeldConnection, float]:
            started = time.monotonic()
            conn = HeldConnection.open(VIP1, 80, timeout=8.0)
            return conn, time.monotonic() - started

        more = client.executor.map_all([timed_open for _ in range(24)], timeout=60)
        held += [conn for conn, _ in more]
        retried = [conn for conn, elapsed in more if elapsed > 0.9]
        counts = Counter(c.hello.backend for c in held)
        print(f"b1 at max_conns 2 + 24 concurrent: {dict(counts)}; {len(retried)} retried")
        assert counts["b1"] == 2, counts

        for conn in held[:2]:  # b1's connections
            conn.close()
        held = held[2:]
        time.sleep(3.0)  # one load refresh (2 s) and margin: kernlb sees b1 free
        probe = _probe(client, 20)
        on_b1 = sum(backend == "b1" for backend, _ in probe)
        slow = sum(elapsed > 0.9 for _, elapsed in probe)
        print(
            f"b1's connections closed, 20 new (b2 holds {len(held)}, {len(retried)} of them "
            f"retried after b1's cap): {probe}"
        )

        for conn in retried:
            conn.close()
            held.remove(conn)
        after = _probe(client, 20)
        print(f"after closing the {len(retried)} retried connections on b2: {after}")

        # Binomial(20, 0.5) >= 3 fails with probability 2e-4; no SYN should need a retry.
        assert on_b1 >= 3 and slow == 0, (
            f"b1 has no connection left but got {on_b1}/20 new ones, {slow} needed a SYN "
            f"retransmit (b2 holds {len(retried)} connections first refused by b1's cap)"
        )
    finally:
        for conn in held:
            conn.close()
