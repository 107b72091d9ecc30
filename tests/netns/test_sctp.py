"""``protocol: sctp`` farms (issue 3, item 2), with SCTP handshakes over raw sockets.

This kernel has SCTP conntrack and NAT but no SCTP sockets (``CONFIG_IP_SCTP`` is not set:
``socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)`` fails with EPROTONOSUPPORT), so no real
association can be made. sctp_raw.py instead sends an INIT from the client and answers it with
an INIT ACK from each backend, which is what the load balancer acts on: the INIT is scheduled
and NATed, the INIT ACK comes back through conntrack from the VIP. The ACK carries the hello
line (backend, the peer it saw, the port it reached). A full association test needs a kernel
with SCTP sockets; :func:`test_a_real_association_through_the_farm` runs where the kernel has them
(it is skipped, with that reason, where it has not).
"""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from .kernlb import Api
from .nsexec import NetnsExecutor
from .sctp_raw import crc32c, sctp_exchange
from .topology import (
    BACKEND_IPS6,
    CLIENT_IPS,
    CLIENT_IPS6,
    HERE,
    LB_BACKEND_SIDE_IP,
    LB_BACKEND_SIDE_IP6,
    VIP2,
    VIP6_2,
    Topology,
)
from .traffic import Client, Hello, parse_hello

pytestmark = pytest.mark.netns

SCTP_RAW = HERE / "sctp_raw.py"
PORT = 5000  # the backends also serve TCP and UDP on 5000: neither may be captured


def test_crc32c_matches_the_rfc_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def _no_sctp_sockets() -> str | None:
    """Why this kernel cannot make a real SCTP association, or None."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError as exc:
        return (
            f"kernel has no SCTP sockets ({exc}; CONFIG_IP_SCTP unset): SCTP farms are tested "
            "with raw-socket INIT / INIT ACK handshakes only (test_sctp_farm_*)"
        )
    return None


NO_SCTP_SOCKETS = _no_sctp_sockets()


@pytest.fixture
def responders(topo: Topology) -> None:
    for name in ("b1", "b2"):
        topo.spawn(topo.backends[name].ns, SCTP_RAW, f"--name={name}", log_name=f"sctp-{name}")


def _handshakes(
    client: Client, vip: str, n: int, sources: tuple[str, ...]
) -> list[tuple[Hello, tuple[str, int], str]]:
    def run() -> list[tuple[Hello, tuple[str, int], str]]:
        out = []
        for i in range(n):
            src = sources[i % len(sources)]
            cookie, reply_from = sctp_exchange(vip, PORT, source=src)
            out.append((parse_hello(cookie), reply_from, src))
        return out

    return client.executor.run(run)


@pytest.mark.usefixtures("responders")
def test_sctp_farm_balances_nats_and_translates_ports(api: Api, client: Client) -> None:
    api.setup_farm(
        "sig", vip=VIP2, vport=str(PORT), backends={"b1": {}, "b2": {"port": 3868}}, protocol="sctp"
    )
    assert api.get_farm("sig")["params"]["protocol"] == "sctp"

    results = _handshakes(client, VIP2, 80, CLIENT_IPS[:10])
    counts = Counter(h.backend for h, _, _ in results)
    reached = Counter((h.backend, h.local_port) for h, _, _ in results)
    peers = Counter(h.peer_ip for h, _, _ in results)
    replies = Counter(reply_from for _, reply_from, _ in results)
    print(f"sctp nat, 80 INITs: {dict(reached)}; backends saw {dict(peers)}; ACKs from {replies}")
    # Binomial(80, 0.5): sd 4.5; >= 20 each is 4.5 sd below the mean.
    assert set(counts) == {"b1", "b2"} and min(counts.values()) >= 20, counts
    assert set(reached) == {("b1", PORT), ("b2", 3868)}, reached
    assert peers == {LB_BACKEND_SIDE_IP: 80}
    assert replies == {(VIP2, PORT): 80}

    # Only SCTP is captured: TCP and UDP to the same VIP:port are not.
    assert client.refused(VIP2, PORT), "TCP to an SCTP-only VIP:port was captured"
    assert client.udp_probe(VIP2, PORT) == "refused", "UDP to an SCTP-only VIP:port was captured"
    with pytest.raises(TimeoutError):
        client.executor.run(sctp_exchange, VIP2, PORT + 1, timeout=1.0)

    api.edit_farm("sig", nattype="dnat")
    results = _handshakes(client, VIP2, 20, CLIENT_IPS[:10])
    wrong = [(h.peer_ip, src) for h, _, src in results if h.peer_ip != src]
    print(f"sctp dnat: {Counter(h.backend for h, _, _ in results)}; wrong sources {wrong}")
    assert not wrong, f"dnat: backends saw another address than the client's: {wrong}"
    assert {reply_from for _, reply_from, _ in results} == {(VIP2, PORT)}


@pytest.mark.usefixtures("responders")
def test_sctp_farm_over_ipv6(api: Api, client: Client) -> None:
    api.setup_farm(
        "sig6",
        vip=VIP6_2,
        vport=str(PORT),
        backends={"b1": {}, "b2": {}},
        backend_ips=BACKEND_IPS6,
        protocol="sctp",
    )
    results = _handshakes(client, VIP6_2, 60, CLIENT_IPS6[:10])
    counts = Counter(h.backend for h, _, _ in results)
    peers = Counter(h.peer_ip for h, _, _ in results)
    replies = Counter(reply_from for _, reply_from, _ in results)
    print(f"IPv6 sctp nat, 60 INITs: {dict(counts)}; saw {dict(peers)}; ACKs from {replies}")
    assert set(counts) == {"b1", "b2"} and min(counts.values()) >= 12, counts
    assert peers == {LB_BACKEND_SIDE_IP6: 60}
    assert replies == {(VIP6_2, PORT): 60}


@pytest.mark.skipif(NO_SCTP_SOCKETS is not None, reason=str(NO_SCTP_SOCKETS))
def test_a_real_association_through_the_farm(topo: Topology, api: Api, client: Client) -> None:
    api.setup_farm("assoc", vip=VIP2, vport=str(PORT + 1), backends={"b1": {}}, protocol="sctp")
    with NetnsExecutor(topo.backends["b1"].ns, workers=1) as backend:
        listener = backend.run(
            socket.socket, socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP
        )
        with listener:
            listener.bind(("0.0.0.0", PORT + 1))
            listener.listen(1)
            listener.settimeout(10)

            def serve() -> str:
                conn, peer = listener.accept()
                with conn:
                    conn.sendall(conn.recv(64) + f" from {peer[0]}".encode())
                return str(peer[0])

            served = backend.submit(serve)

            def associate() -> bytes:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
                with sock:
                    sock.settimeout(10)
                    sock.connect((VIP2, PORT + 1))
                    sock.sendall(b"hello")
                    return sock.recv(64)

            answer = client.executor.run(associate)
            assert served.result(timeout=15) == LB_BACKEND_SIDE_IP
    assert answer == f"hello from {LB_BACKEND_SIDE_IP}".encode()
