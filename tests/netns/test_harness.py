"""Self-test of the harness, without kernlb: a hand-written ruleset in the LB namespace.

If these fail, the traffic tests' failures say nothing about kernlb.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator

import pytest

from .topology import CLIENT_IP, LB_BACKEND_SIDE_IP, VIP1, VIP2, Topology, nft, ns_exec, sh
from .traffic import Client

pytestmark = pytest.mark.netns

# VIP1 tcp/80 and udp/53 -> b1/b2 (numgen), masqueraded; VIP1 tcp/81 -> b1:8080, client kept.
RULESET = f"""
table inet harness {{
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {VIP1} meta l4proto {{ tcp, udp }} th dport {{ 53, 80 }} ct mark set 0x80000000 \
dnat ip to numgen inc mod 2 map {{ 0 : 198.18.2.1, 1 : 198.18.2.2 }}
        ip daddr {VIP1} tcp dport 81 dnat ip to 198.18.2.1:8080
    }}
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        ct mark 0x80000000 masquerade
    }}
}}
"""


@pytest.fixture
def harness_rules(topo: Topology) -> Iterator[None]:
    nft(topo.lb, "-f", "-", stdin=RULESET)
    yield
    nft(topo.lb, "delete", "table", "inet", "harness")


def test_distribution_nat_and_ports(topo: Topology, client: Client, harness_rules: None) -> None:
    seq = client.sequence(VIP1, 80, 40)
    names = [h.backend for h in seq]
    assert all(a != b for a, b in itertools.pairwise(names)), names
    assert {h.peer_ip for h in seq} == {LB_BACKEND_SIDE_IP}
    assert {h.local_port for h in seq} == {80}

    hello = client.hello(VIP1, 81, source="198.18.1.7")
    assert (hello.backend, hello.peer_ip, hello.local_port) == ("b1", "198.18.1.7", 8080)

    counts = client.backends_of(VIP1, 80, 200, sources=[CLIENT_IP, "198.18.1.2"])
    assert counts == {"b1": 100, "b2": 100}

    refused = client.attempt(VIP1, 443)
    assert refused.error is not None and "ECONNREFUSED" in refused.error
    refused = client.attempt(VIP2, 80)
    assert refused.error is not None and "ECONNREFUSED" in refused.error


def test_udp_reply_comes_from_vip(client: Client, harness_rules: None) -> None:
    seen = set()
    for _ in range(20):
        hello, source = client.udp(VIP1, 53)
        assert source == (VIP1, 53)
        seen.add(hello.backend)
    assert seen == {"b1", "b2"}


def test_held_connection_and_conntrack_flush(
    topo: Topology, client: Client, harness_rules: None
) -> None:
    held = client.hold(VIP1, 80, backend="b2")
    try:
        for _ in range(3):
            held.exchange()
        # Re-point new connections to b1 only, then drop the conntrack state: the held
        # connection's next segment is scheduled anew (to b1, which resets it).
        nft(topo.lb, "flush", "chain", "inet", "harness", "pre")
        nft(
            topo.lb,
            "add",
            "rule",
            "inet",
            "harness",
            "pre",
            "ip",
            "daddr",
            VIP1,
            "tcp",
            "dport",
            "80",
            "ct",
            "mark",
            "set",
            "0x80000000",
            "dnat",
            "ip",
            "to",
            "198.18.2.1",
        )
        held.exchange()  # conntrack keeps the established NAT mapping
        if shutil.which("conntrack") is None:
            pytest.skip("conntrack tool not installed")
        sh(ns_exec(topo.lb, "conntrack", "-F"))
        outcome = held.exchange_outcome(timeout=3)
        assert outcome.startswith(("ConnectionResetError", "EOFError", "BrokenPipeError")), outcome
    finally:
        held.close()


def test_load_generator_counts(client: Client, harness_rules: None) -> None:
    with client.load(VIP1, 80, sources=[CLIENT_IP, "198.18.1.2", "198.18.1.3"]) as load:
        load.event("warm-up")
        load.wait_for(300)
    report = load.stop()
    print(report.summary())
    assert report.total >= 300
    assert not report.failures
    assert set(report.per_backend()) == {"b1", "b2"}


def test_foreign_tables_present(topo: Topology) -> None:
    tables = topo.foreign_tables()
    assert "counter packets 0 bytes 0 drop" in tables["inet hostfw"]
    assert "198.18.19.255.2" not in tables["ip foo"]
    assert "198.19.255.2" in tables["ip foo"]
