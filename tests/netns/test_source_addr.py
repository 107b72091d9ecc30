"""``source_addr`` (kernlb extension; issue 3, item 4; dataplane.md §2 "Source address").

A ``nat`` farm masquerades by default (backends see the LB's own address on their segment); a
farm-level ``source_addr`` SNATs to that address instead, a backend-level one overrides the
farm's for that backend, ``""`` clears it, and ``dnat`` farms ignore it (backends see the
client). The LB holds secondary addresses for this (topology.py ``LB_SOURCE_IPS``/``6``), which
the kernel never picks on its own, so seeing one proves the SNAT.
"""

from __future__ import annotations

from collections import Counter

import pytest

from .kernlb import Api
from .topology import (
    BACKEND_IPS,
    BACKEND_IPS6,
    CLIENT_IPS,
    CLIENT_IPS6,
    LB_BACKEND_SIDE_IP,
    LB_BACKEND_SIDE_IP6,
    LB_SOURCE_IPS,
    LB_SOURCE_IPS6,
    VIP1,
    VIP6_1,
)
from .traffic import Client

pytestmark = pytest.mark.netns

SOURCES = CLIENT_IPS[:20]
SOURCES6 = CLIENT_IPS6[:20]


def _seen(client: Client, vip: str, sources: tuple[str, ...], n: int = 90) -> dict[str, set[str]]:
    """Connect ``n`` times; backend -> the source addresses it saw (every connection must work).

    Under ``dnat`` the client's address is reported as ``"client"`` when it matches."""
    outcomes = client.many(vip, 80, n, sources=sources)
    failed = Counter(o.error for o in outcomes if not o.ok)
    assert not failed, f"{sum(failed.values())}/{n} connections failed: {dict(failed)}"
    seen: dict[str, set[str]] = {}
    for o in outcomes:
        assert o.hello is not None
        peer = "client" if o.hello.peer_ip == o.source else o.hello.peer_ip
        seen.setdefault(o.hello.backend, set()).add(peer)
    return seen


def _bad(api: Api, path: str, body: dict[str, object], method: str = "PUT") -> str:
    resp = api.request(method, path, body)
    assert resp.status == 400, f"{method} {path} {body}: {resp.status} {resp.text}"
    assert isinstance(resp.body, dict) and resp.body.get("error") == "true", resp.text
    message = str(resp.body.get("message", ""))
    assert "source_addr" in message, message
    return message


def test_source_addr_farm_backend_override_clear_and_dnat(api: Api, client: Client) -> None:
    farm_src, backend_src = LB_SOURCE_IPS
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    seen = _seen(client, VIP1, SOURCES)
    print(f"nat, no source_addr: {seen}")
    assert seen == {"b1": {LB_BACKEND_SIDE_IP}, "b2": {LB_BACKEND_SIDE_IP}}

    api.edit_farm("web", source_addr=farm_src)
    assert api.get_farm("web")["params"]["source_addr"] == farm_src
    seen = _seen(client, VIP1, SOURCES)
    print(f"nat, farm source_addr {farm_src}: {seen}")
    assert seen == {"b1": {farm_src}, "b2": {farm_src}}

    api.edit_backend("web", ids["b2"], source_addr=backend_src)
    api.add_backend("web", BACKEND_IPS["b3"], source_addr=backend_src)
    backends = {b["ip"]: b.get("source_addr") for b in api.get_farm("web")["backends"]}
    assert backends == {
        BACKEND_IPS["b1"]: None,
        BACKEND_IPS["b2"]: backend_src,
        BACKEND_IPS["b3"]: backend_src,
    }, backends
    seen = _seen(client, VIP1, SOURCES)
    print(f"nat, farm {farm_src}, b2 and b3 {backend_src}: {seen}")
    assert seen == {"b1": {farm_src}, "b2": {backend_src}, "b3": {backend_src}}

    api.edit_farm("web", source_addr="")
    assert "source_addr" not in api.get_farm("web")["params"]
    seen = _seen(client, VIP1, SOURCES)
    print(f"nat, farm source_addr cleared: {seen}")
    assert seen == {"b1": {LB_BACKEND_SIDE_IP}, "b2": {backend_src}, "b3": {backend_src}}

    api.edit_farm("web", source_addr=farm_src, nattype="dnat")
    seen = _seen(client, VIP1, SOURCES)
    print(f"dnat with farm and backend source_addr: {seen}")
    assert seen == {"b1": {"client"}, "b2": {"client"}, "b3": {"client"}}

    api.edit_farm("web", nattype="nat")
    seen = _seen(client, VIP1, SOURCES)
    print(f"back to nat: {seen}")
    assert seen == {"b1": {farm_src}, "b2": {backend_src}, "b3": {backend_src}}

    before = api.get_farm("web")
    messages = [
        _bad(api, "/farms/web", {"source_addr": "198.18.2.249"}),  # not an address of the LB
        _bad(api, "/farms/web", {"source_addr": LB_SOURCE_IPS6[0]}),  # wrong family
        _bad(api, f"/farms/web/backends/{ids['b1']}", {"source_addr": "198.18.2.249"}),
        _bad(api, "/farms/web/backends", {"ip": "198.18.2.4", "source_addr": "x"}, "POST"),
    ]
    print("refused: " + " | ".join(messages))
    assert api.get_farm("web") == before


def test_source_addr_ipv6(api: Api, client: Client) -> None:
    farm_src, backend_src = LB_SOURCE_IPS6
    ids = api.setup_farm(
        "web6", vip=VIP6_1, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    seen = _seen(client, VIP6_1, SOURCES6)
    assert seen == {"b1": {LB_BACKEND_SIDE_IP6}, "b2": {LB_BACKEND_SIDE_IP6}}, seen

    api.edit_farm("web6", source_addr=farm_src)
    seen = _seen(client, VIP6_1, SOURCES6)
    print(f"IPv6 nat, farm source_addr {farm_src}: {seen}")
    assert seen == {"b1": {farm_src}, "b2": {farm_src}}

    api.edit_backend("web6", ids["b2"], source_addr=backend_src)
    seen = _seen(client, VIP6_1, SOURCES6)
    print(f"IPv6 nat, farm {farm_src}, b2 {backend_src}: {seen}")
    assert seen == {"b1": {farm_src}, "b2": {backend_src}}

    api.edit_farm("web6", nattype="dnat")
    seen = _seen(client, VIP6_1, SOURCES6)
    print(f"IPv6 dnat with source_addr set: {seen}")
    assert seen == {"b1": {"client"}, "b2": {"client"}}
