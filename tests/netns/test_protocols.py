"""dataplane.md §4.11: UDP farms, TCP not captured by a UDP farm, and ``protocol all``."""

from __future__ import annotations

from collections import Counter

import pytest

from .kernlb import Api
from .topology import LB_BACKEND_SIDE_IP, VIP2, VIP3
from .traffic import Client

pytestmark = pytest.mark.netns


def test_udp_farm_balances_datagrams_and_replies_come_from_the_vip(
    api: Api, client: Client
) -> None:
    api.setup_farm("dns", vip=VIP2, vport="53", backends={"b1": {}, "b2": {}}, protocol="udp")
    assert api.get_farm("dns")["params"]["protocol"] == "udp"

    counts: Counter[str] = Counter()
    sources: Counter[tuple[str, int]] = Counter()
    peers: Counter[str] = Counter()
    for _ in range(200):  # each from a fresh socket: a new flow, scheduled on its own
        hello, reply_from = client.udp(VIP2, 53)
        counts[hello.backend] += 1
        sources[reply_from] += 1
        peers[hello.peer_ip] += 1
    print(f"udp 200 flows: {dict(counts)}; replies from {dict(sources)}; backends saw {peers}")
    assert sources == {(VIP2, 53): 200}
    assert peers == {LB_BACKEND_SIDE_IP: 200}
    assert set(counts) == {"b1", "b2"} and min(counts.values()) >= 60, counts

    # The backends also listen on TCP 53: a captured TCP connection would be answered.
    assert client.refused(VIP2, 53), "TCP to a UDP-only VIP:port was captured"
    assert client.udp_probe(VIP2, 5353) == "refused", "UDP outside the farm's port was captured"


def test_protocol_all_captures_tcp_and_udp_on_every_port(api: Api, client: Client) -> None:
    api.setup_farm("any", vip=VIP3, vport="*", backends={"b1": {}, "b2": {}})
    assert api.get_farm("any")["params"]["protocol"] == "all"

    for port in (80, 5000, 12345):
        outcomes = client.many(VIP3, port, 40)
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        reached = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
        print(f"protocol all, tcp {port}: {dict(reached)}")
        assert set(reached) == {("b1", port), ("b2", port)}, reached

    for port in (53, 5000, 12345):
        counts: Counter[str] = Counter()
        for _ in range(40):
            hello, reply_from = client.udp(VIP3, port)
            assert reply_from == (VIP3, port), f"udp reply from {reply_from}"
            assert hello.local_port == port
            counts[hello.backend] += 1
        print(f"protocol all, udp {port}: {dict(counts)}")
        assert set(counts) == {"b1", "b2"}, counts
