"""dataplane.md §4.3-4: NAT modes (the source a backend sees) and backend / virtual ports."""

from __future__ import annotations

from collections import Counter

import pytest

from .kernlb import Api
from .topology import CLIENT_IPS, LB_BACKEND_SIDE_IP, VIP1, VIP2, VIP3
from .traffic import Client, Outcome

pytestmark = pytest.mark.netns

SOURCES = CLIENT_IPS[4:24]


def _seen_sources(outcomes: list[Outcome]) -> Counter[tuple[str | None, str]]:
    failed = [o.error for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} connections failed: {Counter(failed)}"
    return Counter((o.source, o.hello.peer_ip) for o in outcomes if o.hello is not None)


def test_nat_shows_lb_address_and_dnat_shows_client(api: Api, client: Client) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    assert api.get_farm("web")["params"]["nattype"] == "nat"

    seen = _seen_sources(client.many(VIP1, 80, 60, sources=SOURCES))
    print(f"nat: (client, seen by backend) {dict(seen)}")
    assert {peer for _, peer in seen} == {LB_BACKEND_SIDE_IP}

    api.edit_farm("web", nattype="dnat")
    outcomes = client.many(VIP1, 80, 60, sources=SOURCES)
    seen = _seen_sources(outcomes)
    print(f"dnat: (client, seen by backend) {dict(seen)}")
    wrong = {pair: n for pair, n in seen.items() if pair[0] != pair[1]}
    assert not wrong, f"dnat: backends saw another address than the client's: {wrong}"
    assert {o.hello.backend for o in outcomes if o.hello} == {"b1", "b2"}

    api.edit_farm("web", nattype="nat")
    seen = _seen_sources(client.many(VIP1, 80, 40, sources=SOURCES))
    assert {peer for _, peer in seen} == {LB_BACKEND_SIDE_IP}, seen


def test_backend_port_is_used_and_portless_backend_keeps_destination_port(
    api: Api, client: Client
) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {"port": 8080}, "b2": {}})

    outcomes = client.many(VIP1, 80, 100)
    assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
    ports = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
    print(f"mixed farm VIP:80 -> (backend, port reached) {dict(ports)}")
    assert set(ports) == {("b1", 8080), ("b2", 80)}, ports
    assert client.refused(VIP1, 8080), "VIP:8080 was captured by a farm on port 80"


def test_multiport_list_captures_exactly_its_ports(api: Api, client: Client) -> None:
    api.setup_farm("multi", vip=VIP2, vport="80,443", backends={"b1": {}, "b2": {}})

    for port in (80, 443):
        outcomes = client.many(VIP2, port, 60)
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        reached = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
        print(f"multiport VIP:{port} -> {dict(reached)}")
        assert set(reached) == {("b1", port), ("b2", port)}, reached
    for port in (8443, 8080, 53):
        assert client.refused(VIP2, port), f"VIP:{port} is outside 80,443 but was captured"


def test_port_range_captures_exactly_its_ports(api: Api, client: Client) -> None:
    api.setup_farm("range", vip=VIP3, vport="1000:2000", backends={"b1": {}, "b2": {}})

    for port in (1000, 1500, 2000):
        outcomes = client.many(VIP3, port, 40)
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        reached = Counter((o.hello.backend, o.hello.local_port) for o in outcomes if o.hello)
        print(f"range VIP:{port} -> {dict(reached)}")
        assert set(reached) == {("b1", port), ("b2", port)}, reached
    for port in (999, 2001, 80):
        assert client.refused(VIP3, port), f"VIP:{port} is outside 1000:2000 but was captured"
