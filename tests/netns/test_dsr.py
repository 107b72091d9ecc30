"""DSR and stateless DNAT (dataplane.md §3, behaviours 13, 14, 15) on a one-arm segment."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from .kernlb import Api, KernlbServer, SharedServer, lend_server, lend_topology, module_lab_fixture
from .onearm import (
    DSR_VIP,
    DSR_VIP6,
    GHOST_BACKEND,
    LB_IP,
    MANY_CLIENTS,
    OFF_SEGMENT_BACKEND,
    ONEARM_BACKENDS,
    ONEARM_BACKENDS6,
    REMOTE_CLIENT,
    SEGMENT_CLIENT,
    SEGMENT_CLIENT6,
    STATELESS_VIP,
    OneArm,
)
from .topology import nft, ns_exec, sh
from .traffic import Client

pytestmark = pytest.mark.netns

ALGORITHMS = ("weight", "roundrobin", "hash_srcip", "hash_srcip_srcport", "symhash", "leastconn")

# A counter in the LB's own (test-owned) table: replies from backends to the segment client.
# With DSR it must stay at zero: the replies go straight to the client.
REPLY_WATCH = f"""
table netdev replywatch {{
    chain in {{
        type filter hook ingress device "eth0" priority -500; policy accept;
        ip saddr {{ {", ".join(ONEARM_BACKENDS.values())}, {DSR_VIP} }} ip daddr {SEGMENT_CLIENT} \
counter
    }}
}}
"""


onearm_lab = module_lab_fixture(OneArm, "onearm_lab")


@pytest.fixture
def onearm(
    request: pytest.FixtureRequest, onearm_lab: tuple[OneArm, SharedServer]
) -> Iterator[OneArm]:
    """The module's one-arm segment, reset after each test (as ``topo``)."""
    with lend_topology(*onearm_lab, request, server_fixture="server") as topology:
        yield topology


@pytest.fixture
def server(
    request: pytest.FixtureRequest, onearm: OneArm, onearm_lab: tuple[OneArm, SharedServer]
) -> Iterator[KernlbServer]:
    with lend_server(onearm_lab[1], onearm, request) as kernlb:
        yield kernlb


@pytest.fixture
def dsr_api(server: KernlbServer) -> Api:
    return server.api


@pytest.fixture
def onearm_client(onearm: OneArm) -> Client:
    assert onearm.client_exec is not None
    return Client(onearm.client_exec)


def dsr_farm(api: Api, *, name: str = "dsr", nattype: str = "dsr", vip: str = DSR_VIP) -> None:
    api.create_farm(name, vip=vip, vport="80")
    api.edit_farm(name, nattype=nattype)
    for ip in ONEARM_BACKENDS.values():
        api.add_backend(name, ip)


def wait_status(api: Api, name: str, backend_ip: str, wanted: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        farm = api.get_farm(name)
        status = next(b["status"] for b in farm["backends"] if b["ip"] == backend_ip)
        if status == wanted:
            return
        time.sleep(0.3)
    raise AssertionError(f"backend {backend_ip} of {name} stayed {status}, wanted {wanted}")


def reply_counter(lb: str) -> int:
    listing = json.loads(nft(lb, "-j", "list", "table", "netdev", "replywatch"))["nftables"]
    for item in listing:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError("no counter")


def lb_conntrack(lb: str, *args: str) -> int:
    out = sh(ns_exec(lb, "conntrack", "-L", *args), check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip() and "flow entries" not in line)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_dsr_every_connection_completes_and_replies_bypass_the_lb(
    algorithm: str,
    onearm: OneArm,
    dsr_api: Api,
    onearm_client: Client,
    request: pytest.FixtureRequest,
) -> None:
    nft(onearm.lb, "-f", "-", stdin=REPLY_WATCH)
    request.addfinalizer(lambda: nft(onearm.lb, "delete", "table", "netdev", "replywatch"))
    dsr_farm(dsr_api)
    dsr_api.edit_farm("dsr", algorithm=algorithm)
    outcomes = onearm_client.many(DSR_VIP, 80, 240, concurrency=6)
    failures = Counter(o.error for o in outcomes if not o.ok)
    per_backend = Counter(o.hello.backend for o in outcomes if o.hello is not None)
    print(f"\nDSR {algorithm}: {sum(per_backend.values())}/240 completed {dict(per_backend)}")
    assert not failures, f"{algorithm}: {failures}"
    # Backends saw the client's real address (and answered from the VIP, or the client's
    # socket would not have accepted the handshake).
    assert {o.hello.peer_ip for o in outcomes if o.hello} == {SEGMENT_CLIENT}
    if algorithm != "hash_srcip":  # one client address: hash_srcip pins it to one backend
        assert len(per_backend) == 3, per_backend
    assert reply_counter(onearm.lb) == 0, "replies went through the LB"
    assert lb_conntrack(onearm.lb, "-d", DSR_VIP) == 0, "DSR must not create conntrack entries"


def test_dsr_over_ipv6_completes_every_connection_without_conntrack(
    onearm: OneArm, dsr_api: Api, onearm_client: Client
) -> None:
    """The ingress chain's `meta protocol vmap` sends IPv6 to its own chain (in6-<device>)."""
    dsr_api.create_farm("dsr6", vip=DSR_VIP6, vport="80")
    dsr_api.edit_farm("dsr6", nattype="dsr", algorithm="hash_srcip_srcport")
    for ip in ONEARM_BACKENDS6.values():
        dsr_api.add_backend("dsr6", ip)
    for ip in ONEARM_BACKENDS6.values():
        wait_status(dsr_api, "dsr6", ip, "up")
    outcomes = onearm_client.many(DSR_VIP6, 80, 120, concurrency=6)
    failures = Counter(o.error for o in outcomes if not o.ok)
    per_backend = Counter(o.hello.backend for o in outcomes if o.hello is not None)
    print(f"\nDSR over IPv6: {sum(per_backend.values())}/120 completed {dict(per_backend)}")
    assert not failures, failures
    assert {o.hello.peer_ip for o in outcomes if o.hello} == {SEGMENT_CLIENT6}
    assert len(per_backend) == 3, per_backend
    assert lb_conntrack(onearm.lb, "-f", "ipv6", "-d", DSR_VIP6) == 0


def test_stateless_dnat_talks_from_the_vip_without_conntrack(
    onearm: OneArm, dsr_api: Api, onearm_client: Client
) -> None:
    # Backends serve their own address here: no VIP needed on their lo.
    dsr_farm(dsr_api, name="sl", nattype="stateless_dnat", vip=STATELESS_VIP)
    outcomes = onearm_client.many(STATELESS_VIP, 80, 240, sources=[REMOTE_CLIENT], concurrency=6)
    failures = Counter(o.error for o in outcomes if not o.ok)
    per_backend = Counter(o.hello.backend for o in outcomes if o.hello is not None)
    print(f"\nstateless DNAT: {sum(per_backend.values())}/240 completed {dict(per_backend)}")
    assert not failures, failures
    assert len(per_backend) == 3
    assert {o.hello.peer_ip for o in outcomes if o.hello} == {REMOTE_CLIENT}
    assert lb_conntrack(onearm.lb, "-s", REMOTE_CLIENT) == 0
    assert lb_conntrack(onearm.lb, "-d", REMOTE_CLIENT) == 0


def test_a_backend_without_a_mac_is_undefined_and_gets_nothing(
    onearm: OneArm, dsr_api: Api, onearm_client: Client
) -> None:
    dsr_farm(dsr_api)
    dsr_api.add_backend("dsr", GHOST_BACKEND)
    wait_status(dsr_api, "dsr", GHOST_BACKEND, "undefined")
    farm = dsr_api.get_farm("dsr")
    assert farm["params"]["status"] == "up", "undefined backends count for nothing"
    per_backend = onearm_client.backends_of(DSR_VIP, 80, 150, concurrency=6)
    assert set(per_backend) == set(ONEARM_BACKENDS), per_backend
    # The neighbour table must never have made up a MAC for it.
    neigh = sh(ns_exec(onearm.lb, "ip", "neigh", "show", GHOST_BACKEND)).stdout
    assert "lladdr" not in neigh, neigh


def test_removing_a_backend_moves_only_its_flows(
    onearm: OneArm, dsr_api: Api, onearm_client: Client
) -> None:
    dsr_farm(dsr_api)
    dsr_api.edit_farm("dsr", algorithm="hash_srcip")

    def placement() -> dict[str, str]:
        outcomes = onearm_client.many(DSR_VIP, 80, len(MANY_CLIENTS), sources=MANY_CLIENTS)
        assert all(o.ok for o in outcomes), Counter(o.error for o in outcomes)
        return {o.source or "": o.hello.backend for o in outcomes if o.hello is not None}

    before = placement()
    assert placement() == before, "hash_srcip must be stable"
    b2 = next(b["id"] for b in dsr_api.get_farm("dsr")["backends"] if b["ip"].endswith(".12"))
    dsr_api.delete_backend("dsr", b2)
    after = placement()
    moved = {c for c in before if before[c] != after[c]}
    print(f"\nremoving b2 moved {len(moved)}/{len(before)} clients")
    assert moved == {c for c in before if before[c] == "b2"}
    assert "b2" not in after.values()


def test_switching_modes_is_atomic_and_keeps_the_farm(
    onearm: OneArm, dsr_api: Api, onearm_client: Client
) -> None:
    dsr_farm(dsr_api)
    dsr_api.edit_farm("dsr", algorithm="roundrobin", persistence="ip", ttl=30)
    # (dnat is left out: on one segment its replies would bypass the LB)
    for nattype in ("nat", "dsr", "nat", "dsr"):
        dsr_api.edit_farm("dsr", nattype=nattype)
        params = dsr_api.get_farm("dsr")["params"]
        assert (params["nattype"], params["algorithm"], params["persistence"], params["ttl"]) == (
            nattype,
            "roundrobin",
            "ip",
            30,
        )
        per_backend = onearm_client.backends_of(DSR_VIP, 80, 30, concurrency=3)
        assert sum(per_backend.values()) == 30
    # The farm ends in DSR mode (netdev): no NAT chain of any farm may be left in inet.
    inet = json.loads(nft(onearm.lb, "-j", "list", "table", "inet", "kernlb"))["nftables"]
    chains = [i["chain"]["name"] for i in inet if "chain" in i]
    assert not [name for name in chains if name.startswith("f-")], f"stale NAT chain: {chains}"


def test_bad_input_for_netdev_modes(
    onearm: OneArm, dsr_api: Api, request: pytest.FixtureRequest
) -> None:
    dsr_api.create_farm("dsr", vip=DSR_VIP, vport="80")
    dsr_api.add_backend("dsr", ONEARM_BACKENDS["b1"], port=8080)
    refused = dsr_api.request("PUT", "/farms/dsr", {"nattype": "dsr"})
    assert refused.status == 400 and "cannot translate ports" in refused.body["message"]
    assert dsr_api.get_farm("dsr")["params"]["nattype"] == "nat"

    dsr_api.create_farm("dsr2", vip=STATELESS_VIP, vport="80")
    dsr_api.edit_farm("dsr2", nattype="dsr")
    off = dsr_api.request("POST", "/farms/dsr2/backends", {"ip": OFF_SEGMENT_BACKEND})
    assert off.status == 400 and "L2 segment" in off.body["message"], off.body
    assert dsr_api.get_farm("dsr2")["backends"] == []

    sh(ns_exec(onearm.lb, "ip", "addr", "add", "198.18.4.200/32", "dev", "lo"))
    request.addfinalizer(
        lambda: sh(["ip", "-n", onearm.lb, "addr", "del", "198.18.4.200/32", "dev", "lo"])
    )
    dsr_api.create_farm("onlo", vip="198.18.4.200", vport="80")
    on_lo = dsr_api.request("PUT", "/farms/onlo", {"nattype": "stateless_dnat"})
    assert on_lo.status == 400 and "it is on lo" in on_lo.body["message"], on_lo.body
    assert LB_IP  # the LB's own address stays out of every farm
