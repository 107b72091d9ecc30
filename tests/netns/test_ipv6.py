"""dataplane.md §4.12: IPv6 farms balance exactly like IPv4.

The IPv6 topology mirrors the IPv4 one (topology.py): clients 2001:2:0:1::1-28, the LB at
2001:2:0:1::fe / 2001:2:0:2::fe, VIPs 2001:2::10-12 on its lo, backends 2001:2:0:2::1-3. Each
test repeats an IPv4 behaviour of test_scheduling.py, test_hashing_limits.py, test_nat_ports.py
and test_protocols.py on an IPv6 farm, with the same bounds; the last one checks that a farm
never mixes families (400, nothing changed).
"""

from __future__ import annotations

from collections import Counter

import pytest

from .kernlb import Api
from .topology import (
    BACKEND_IPS,
    BACKEND_IPS6,
    CLIENT_IPS6,
    LB_BACKEND_SIDE_IP,
    LB_BACKEND_SIDE_IP6,
    VIP1,
    VIP6_1,
    VIP6_2,
    VIP6_3,
)
from .traffic import Client, Outcome

pytestmark = pytest.mark.netns

SOURCES6 = CLIENT_IPS6[4:24]


def _seen_sources(outcomes: list[Outcome]) -> Counter[tuple[str | None, str]]:
    failed = [o.error for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} connections failed: {Counter(failed)}"
    return Counter((o.source, o.hello.peer_ip) for o in outcomes if o.hello is not None)


def _peers(seen: Counter[tuple[str | None, str]]) -> dict[str, int]:
    """Connections per address seen by the backends; the client's own shows as "client"."""
    out: Counter[str] = Counter()
    for (src, peer), n in seen.items():
        out["client" if peer == src else peer] += n
    return dict(out)


def _mapping(client: Client, sources: tuple[str, ...] = CLIENT_IPS6) -> dict[str, str]:
    return {src: client.hello(VIP6_1, 80, source=src).backend for src in sources}


def test_ipv6_weight_3_1_splits_75_25(api: Api, client: Client) -> None:
    api.setup_farm(
        "web6",
        vip=VIP6_1,
        vport="80",
        backends={"b1": {"weight": 3}, "b2": {"weight": 1}},
        backend_ips=BACKEND_IPS6,
    )
    farm = api.get_farm("web6")
    assert farm["params"]["vip"] == VIP6_1
    assert {b["ip"] for b in farm["backends"]} == {BACKEND_IPS6["b1"], BACKEND_IPS6["b2"]}

    counts = client.backends_of(VIP6_1, 80, 400)
    print(f"IPv6 weight 3/1, 400 connections: {dict(counts)}")
    # Binomial(400, 0.75): sd 8.7; 260..340 is beyond 4.5 sd, and excludes an even split.
    assert set(counts) == {"b1", "b2"}
    assert 260 <= counts["b1"] <= 340, counts


def test_ipv6_roundrobin_weights_2_1_repeat_a_a_b(api: Api, client: Client) -> None:
    api.setup_farm(
        "web6",
        vip=VIP6_1,
        vport="80",
        backends={"b1": {"weight": 2}, "b2": {"weight": 1}},
        backend_ips=BACKEND_IPS6,
        algorithm="roundrobin",
    )

    names = [h.backend for h in client.sequence(VIP6_1, 80, 90)]
    print(f"IPv6 roundrobin 2/1: {''.join(n[-1] for n in names)}")
    assert Counter(names[:3]) == {"b1": 2, "b2": 1}, names
    breaks = [i for i in range(3, len(names)) if names[i] != names[i - 3]]
    assert not breaks, f"pattern is not a period-3 a,a,b cycle (breaks at {breaks}): {names}"
    assert Counter(names) == {"b1": 60, "b2": 30}


def test_ipv6_hash_srcip_pins_clients_and_moves_only_the_failed_backends(
    api: Api, client: Client
) -> None:
    ids = api.setup_farm(
        "web6",
        vip=VIP6_1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        backend_ips=BACKEND_IPS6,
        algorithm="hash_srcip",
    )
    per_client = {
        src: Counter(h.backend for h in client.sequence(VIP6_1, 80, 3, source=src))
        for src in CLIENT_IPS6
    }
    split = {src: dict(c) for src, c in per_client.items() if len(c) > 1}
    assert not split, f"hash_srcip split IPv6 clients over backends: {split}"
    three = {src: next(iter(c)) for src, c in per_client.items()}
    spread = Counter(three.values())
    print(f"IPv6 hash_srcip, 40 clients x 3: clients per backend {dict(spread)}")
    # 40 clients on 3 equal backends: P(one backend gets none) = 3 * (2/3)^40 < 1e-6.
    assert set(spread) == {"b1", "b2", "b3"}, spread

    api.maintenance("web6", ids["b3"], mode="drain")
    failed = _mapping(client)
    moves = Counter((three[s], failed[s]) for s in three if three[s] != failed[s])
    print(f"IPv6 hash_srcip, b3 unavailable: moves {dict(moves)}")
    assert "b3" not in failed.values()
    assert sum(n for (a, _), n in moves.items() if a != "b3") == 0, dict(moves)
    assert sum(moves.values()) == spread["b3"], dict(moves)

    api.backend_up("web6", ids["b3"])
    assert _mapping(client) == three, "b3 back: IPv6 clients did not return to their backends"

    api.edit_farm("web6", algorithm="hash_srcip_srcport")
    counts = Counter(h.backend for h in client.sequence(VIP6_1, 80, 150, source=CLIENT_IPS6[0]))
    print(f"IPv6 hash_srcip_srcport, one client x 150: {dict(counts)}")
    assert set(counts) == {"b1", "b2", "b3"} and min(counts.values()) >= 25, counts


def test_ipv6_nat_shows_lb_address_and_dnat_shows_client(api: Api, client: Client) -> None:
    api.setup_farm(
        "web6", vip=VIP6_1, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    assert api.get_farm("web6")["params"]["nattype"] == "nat"

    seen = _seen_sources(client.many(VIP6_1, 80, 60, sources=SOURCES6))
    print(f"IPv6 nat, 60 connections from 20 clients: backends saw {_peers(seen)}")
    assert {peer for _, peer in seen} == {LB_BACKEND_SIDE_IP6}

    api.edit_farm("web6", nattype="dnat")
    outcomes = client.many(VIP6_1, 80, 60, sources=SOURCES6)
    seen = _seen_sources(outcomes)
    print(f"IPv6 dnat, 60 connections from 20 clients: backends saw {_peers(seen)}")
    wrong = {pair: n for pair, n in seen.items() if pair[0] != pair[1]}
    assert not wrong, f"IPv6 dnat: backends saw another address than the client's: {wrong}"
    assert len(seen) == len(SOURCES6)
    assert {o.hello.backend for o in outcomes if o.hello} == {"b1", "b2"}


def test_ipv6_backend_port_and_portless_backend(api: Api, client: Client) -> None:
    api.setup_farm(
        "web6",
        vip=VIP6_1,
        vport="80",
        backends={"b1": {"port": 8080}, "b2": {}},
        backend_ips=BACKEND_IPS6,
    )

    outcomes = client.many(VIP6_1, 80, 100)
    assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
    ports = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
    print(f"IPv6 mixed farm [VIP]:80 -> (backend, port reached) {dict(ports)}")
    assert set(ports) == {("b1", 8080), ("b2", 80)}, ports
    assert client.refused(VIP6_1, 8080), "[VIP]:8080 was captured by a farm on port 80"


def test_ipv6_udp_farm_balances_and_replies_come_from_the_vip(api: Api, client: Client) -> None:
    api.setup_farm(
        "dns6",
        vip=VIP6_2,
        vport="53",
        backends={"b1": {}, "b2": {}},
        backend_ips=BACKEND_IPS6,
        protocol="udp",
    )

    counts: Counter[str] = Counter()
    sources: Counter[tuple[str, int]] = Counter()
    peers: Counter[str] = Counter()
    for _ in range(200):  # each from a fresh socket: a new flow, scheduled on its own
        hello, reply_from = client.udp(VIP6_2, 53)
        counts[hello.backend] += 1
        sources[reply_from] += 1
        peers[hello.peer_ip] += 1
    print(f"IPv6 udp 200 flows: {dict(counts)}; replies from {dict(sources)}; saw {dict(peers)}")
    assert sources == {(VIP6_2, 53): 200}
    assert peers == {LB_BACKEND_SIDE_IP6: 200}
    assert set(counts) == {"b1", "b2"} and min(counts.values()) >= 60, counts
    assert client.refused(VIP6_2, 53), "TCP to a UDP-only [VIP]:port was captured"
    assert client.udp_probe(VIP6_2, 5353) == "refused", "UDP outside the farm's port was captured"


def _refused(api: Api, method: str, path: str, body: dict[str, object], needle: str) -> str:
    resp = api.request(method, path, body)
    assert resp.status == 400, f"{method} {path} {body}: {resp.status} {resp.text}"
    assert isinstance(resp.body, dict) and resp.body.get("error") == "true", resp.text
    message = str(resp.body.get("message", ""))
    assert needle.lower() in message.lower(), f"{method} {path}: message {message!r}"
    return message


def test_mixing_families_in_a_farm_is_400_and_changes_nothing(api: Api, client: Client) -> None:
    ids6 = api.setup_farm(
        "web6", vip=VIP6_1, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    ids4 = api.setup_farm("web4", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    before = {name: api.get_farm(name) for name in ("web4", "web6")}

    messages = [
        _refused(api, "POST", "/farms/web6/backends", {"ip": BACKEND_IPS["b3"]}, "IPv6"),
        _refused(api, "POST", "/farms/web4/backends", {"ip": BACKEND_IPS6["b3"]}, "IPv4"),
        # ZAPI v3.1's own message for a bad IP in a backend edit is "Invalid IP." (zapi31.md).
        _refused(api, "PUT", f"/farms/web6/backends/{ids6['b1']}", {"ip": BACKEND_IPS["b1"]}, "IP"),
        _refused(
            api, "PUT", f"/farms/web4/backends/{ids4['b1']}", {"ip": BACKEND_IPS6["b1"]}, "IP"
        ),
        _refused(api, "PUT", "/farms/web4", {"vip": VIP6_2}, "family"),
        _refused(api, "PUT", "/farms/web6", {"vip": "198.18.0.11"}, "family"),
    ]
    print("mixing families refused: " + " | ".join(messages))
    assert {name: api.get_farm(name) for name in ("web4", "web6")} == before

    # Both farms still balance, each within its own family, on the same port.
    out6 = client.many(VIP6_1, 80, 40, sources=SOURCES6)
    out4 = client.many(VIP1, 80, 40)
    for outcomes, lb_ip in ((out6, LB_BACKEND_SIDE_IP6), (out4, LB_BACKEND_SIDE_IP)):
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        assert {o.hello.peer_ip for o in outcomes if o.hello} == {lb_ip}
        assert {o.hello.backend for o in outcomes if o.hello} == {"b1", "b2"}


DEAD = ("ConnectionResetError", "EOFError", "BrokenPipeError")


def test_ipv6_drain_keeps_and_cut_kills_established_connections(api: Api, client: Client) -> None:
    ids = api.setup_farm(
        "web6", vip=VIP6_1, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    first = client.hold(VIP6_1, 80, backend="b1")
    second = other = None
    try:
        api.maintenance("web6", ids["b1"], mode="drain")
        assert client.backends_of(VIP6_1, 80, 40) == {"b2": 40}
        assert first.exchange_outcome() == "alive", "drain dropped an established connection"
        api.backend_up("web6", ids["b1"])

        second = client.hold(VIP6_1, 80, backend="b1")
        other = client.hold(VIP6_1, 80, backend="b2")
        api.maintenance("web6", ids["b1"], mode="cut")
        outcomes = [first.exchange_outcome(timeout=3), second.exchange_outcome(timeout=3)]
        print(f"IPv6 after cut: held connections to b1 -> {outcomes}")
        for outcome in outcomes:
            assert outcome.startswith(DEAD), f"cut b1 left its IPv6 connection {outcome!r}"
        assert other.exchange_outcome() == "alive", "cutting b1 broke a connection to b2"
        assert client.backends_of(VIP6_1, 80, 40) == {"b2": 40}
    finally:
        for conn in (first, second, other):
            if conn is not None:
                conn.close()


def test_ipv6_persistence_sticks_and_leaves_an_unavailable_backend(
    api: Api, client: Client
) -> None:
    ids = api.setup_farm(
        "web6",
        vip=VIP6_1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        backend_ips=BACKEND_IPS6,
        persistence="ip",
        ttl=120,
    )
    src = CLIENT_IPS6[8]
    first = [h.backend for h in client.sequence(VIP6_1, 80, 30, source=src)]
    assert len(set(first)) == 1, f"IPv6 persistence did not stick: {first}"
    sticky = first[0]
    spread = {s: client.hello(VIP6_1, 80, source=s).backend for s in CLIENT_IPS6[10:30]}
    assert len(set(spread.values())) >= 2, spread

    api.maintenance("web6", ids[sticky], mode="drain")
    outcome = client.attempt(VIP6_1, 80, source=src)
    assert outcome.hello is not None, f"next connection after {sticky} left failed: {outcome}"
    assert outcome.hello.backend != sticky
    assert outcome.elapsed < 0.9, f"next connection needed {outcome.elapsed:.2f}s"
    after = [h.backend for h in client.sequence(VIP6_1, 80, 20, source=src)]
    print(f"IPv6 client {src}: {sticky} x30, drained -> {outcome.hello.backend} then {after}")
    assert set(after) == {outcome.hello.backend}, after


def test_ipv6_protocol_all_and_ipv4_farm_on_the_same_port(api: Api, client: Client) -> None:
    api.setup_farm(
        "any6", vip=VIP6_3, vport="*", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    api.setup_farm("web4", vip="198.18.0.12", vport="*", backends={"b3": {}})
    assert api.get_farm("any6")["params"]["protocol"] == "all"

    for port in (80, 12345):
        outcomes = client.many(VIP6_3, port, 40)
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        reached = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
        print(f"IPv6 protocol all, tcp {port}: {dict(reached)}")
        assert set(reached) == {("b1", port), ("b2", port)}, reached
    for port in (53, 5000):
        counts: Counter[str] = Counter()
        for _ in range(30):
            hello, reply_from = client.udp(VIP6_3, port)
            assert reply_from == (VIP6_3, port), f"udp reply from {reply_from}"
            counts[hello.backend] += 1
        print(f"IPv6 protocol all, udp {port}: {dict(counts)}")
        assert set(counts) == {"b1", "b2"}, counts
    # The IPv4 wildcard farm is separate: its traffic goes to b3 only.
    assert client.backends_of("198.18.0.12", 80, 20) == {"b3": 20}
