"""The per-packet path, traced by the kernel (docs/dataplane.md, "The per-packet path").

A test-owned table in the LB namespace sets `nftrace` on the client's packets to the VIP
(priority -500, before anything of kernlb's), and `nft monitor trace` reports every chain and
rule each traced packet evaluates. A held connection's first packet walks kernlb's nat chains
(dispatch, farm, DNAT); its later packets must evaluate no kernlb rule at all, and an IPv4
packet no IPv6 chain (and the reverse).
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict

import pytest

from .kernlb import Api
from .topology import BACKEND_IPS6, VIP1, VIP6_1, Topology, nft, ns_exec
from .traffic import Client

pytestmark = pytest.mark.netns

TRACE_TABLE = "klbtrace"


def _trace(topo: Topology, family: int, vip: str, client: Client) -> dict[str, list[str]]:
    """Trace lines of table kernlb per traced packet (key: packet line), for one held connection
    that exchanges data three times before it closes."""
    ip = "ip" if family == 4 else "ip6"
    nft(
        topo.lb,
        "-f",
        "-",
        stdin=(
            f"table inet {TRACE_TABLE} {{\n"
            "  chain pre {\n"
            "    type filter hook prerouting priority -500; policy accept;\n"
            f"    {ip} daddr {vip} tcp dport 80 meta nftrace set 1\n"
            "  }\n"
            "}\n"
        ),
    )
    monitor = subprocess.Popen(
        ns_exec(topo.lb, "nft", "monitor", "trace"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)  # the monitor subscribes before the first packet
        held = client.hold(vip, 80)
        try:
            for _ in range(3):
                held.exchange()
        finally:
            held.close()
        time.sleep(0.5)
    finally:
        monitor.terminate()
        output, _ = monitor.communicate(timeout=10)
        nft(topo.lb, "delete", "table", "inet", TRACE_TABLE)
    # Trace ids are reused across packets: a packet starts at its `klbtrace pre packet:` line.
    packets: dict[str, list[str]] = defaultdict(list)
    current: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[0] != "trace":
            continue
        trace_id, table = parts[2], parts[4]
        if table == TRACE_TABLE and parts[6] == "packet:":
            current[trace_id] = f"{len(packets)} {line}"
            packets[current[trace_id]] = []
        elif table == "kernlb" and trace_id in current:
            packets[current[trace_id]].append(" ".join(parts[5:]))
    return packets


@pytest.mark.parametrize("family", [4, 6])
def test_only_the_first_packet_of_a_connection_meets_kernlb_rules(
    topo: Topology, api: Api, client: Client, family: int
) -> None:
    if family == 4:
        api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
        vip, other = VIP1, "6"
    else:
        backends = {"b1": {}, "b2": {}}
        api.setup_farm("web6", vip=VIP6_1, vport="80", backends=backends, backend_ips=BACKEND_IPS6)
        vip, other = VIP6_1, "4"

    packets = _trace(topo, family, vip, client)
    print(f"\nIPv{family}: {len(packets)} traced packets")
    for packet, lines in packets.items():
        print(f"  {packet[:140]}\n    " + "\n    ".join(lines))
    assert len(packets) >= 6, "too few packets traced (SYN, ACK, 3 data, FIN)"
    first, *rest = packets.values()
    chains = [line.split()[0] for line in first]
    assert chains[:2] == ["nat-pre", "nat-pre"], first  # its rule, then the goto
    assert f"dispatch{family}" in chains, first
    assert any(c.startswith("f-") for c in chains), first
    assert not [c for c in chains if c.endswith(other) and not c.startswith("f-")], first
    assert [lines for lines in rest if lines] == [], "an established packet evaluated kernlb rules"
