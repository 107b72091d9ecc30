"""A kernlb cluster with real traffic: two LB namespaces sharing a PostgreSQL database, VIPs by
keepalived (VRRP), connections by conntrackd (FTFW over a dedicated link).  Prints the figures
(run with -s): convergence, takeover time, failed new connections and their window."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.net.lab import Lab

from ..conftest import require_netns
from ..postgres import ThrowawayPostgres
from .cluster_lab import (
    BACKENDS,
    CLIENT_SOURCES,
    GATEWAY,
    VIP,
    ClusterLab,
    ClusterServer,
    LbNode,
    new_lab,
)
from .kernlb import normalized_listing
from .topology import ns_exec, sh
from .traffic import Client, HeldConnection, LoadGenerator

pytestmark = pytest.mark.netns

HELD = 20


@pytest.fixture
def lab(postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[ClusterLab]:
    with cluster_lab(tmp_path, postgres.create_database()) as lab:
        yield lab


@contextlib.contextmanager
def cluster_lab(
    tmp_path: Path, db_url: str, *, extra_env: dict[str, str] | None = None
) -> Iterator[ClusterLab]:
    require_netns()
    for daemon in ("keepalived", "conntrackd"):
        if shutil.which(daemon) is None and shutil.which(daemon, path="/usr/sbin") is None:
            pytest.fail(f"{daemon} is not installed (scripts/setup.sh --test installs it)")
    lab = new_lab(tmp_path, db_url)
    lab.extra_env = dict(extra_env or {})
    lab.build()
    try:
        yield lab
    except BaseException:
        for node in lab.nodes.values():
            print(f"--- {node.name} kernlb log ---\n{node.server.log_tail(60)}")
        raise
    finally:
        lab.destroy()


def converge(lab: ClusterLab, *, timeout: float = 5.0) -> float:
    """Seconds until both kernels hold the same kernlb ruleset."""
    started = time.monotonic()
    one, two = (lab.nodes[n].ns for n in ("lb1", "lb2"))
    while time.monotonic() - started < timeout:
        if normalized_listing(one) == normalized_listing(two):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("the two kernels did not converge")


def exchange_all(lab: ClusterLab, held: list[HeldConnection]) -> list[str]:
    assert lab.client_exec is not None
    return [lab.client_exec.run(c.exchange_outcome, timeout=8.0) for c in held]


def test_farms_follow_the_cluster_and_connections_survive_failover_and_failback(
    lab: ClusterLab,
) -> None:
    held: list[HeldConnection] = []
    try:
        run_failovers(lab, held)
    finally:
        for connection in held:
            connection.close()


def run_failovers(lab: ClusterLab, held: list[HeldConnection]) -> None:
    lb1, lb2 = lab.start_node("lb1"), lab.start_node("lb2")
    client = Client(lab.client_exec)  # type: ignore[arg-type]

    # A farm made through lb1 and one made through lb2: both kernels get both.
    lb1.server.api.setup_farm(
        "web", vip=VIP, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKENDS,
        nattype="dnat",
    )  # fmt: skip
    web_converged = converge(lab)
    lb2.server.api.setup_farm(
        "api", vip=VIP, vport="81", backends={"b1": {}, "b2": {}}, backend_ips=BACKENDS,
        nattype="dnat",
    )  # fmt: skip
    api_converged = converge(lab)
    print(f"\nconvergence after the last write: lb1->lb2 {web_converged * 1000:.0f} ms, "
          f"lb2->lb1 {api_converged * 1000:.0f} ms")  # fmt: skip
    assert web_converged < 1.0 and api_converged < 1.0
    # keepalived was reloaded with the farms' VIP: the higher priority holds it.
    lab.wait_master("lb1", timeout=15)
    assert client.hello(VIP, 81).backend in BACKENDS  # made on lb2, answered by lb1 (master)

    assert lab.client_exec is not None
    held += [
        lab.client_exec.run(
            HeldConnection.open, VIP, 80, source=CLIENT_SOURCES[i % len(CLIENT_SOURCES)]
        )
        for i in range(HELD)
    ]
    assert exchange_all(lab, held) == ["alive"] * HELD
    time.sleep(0.5)  # conntrackd has them on lb2 within milliseconds (ha-notes §4)

    # 1. lb1's kernlb and keepalived die at once (SIGKILL).
    load = LoadGenerator(
        client, VIP, 80, CLIENT_SOURCES[:4], pause=0.02, timeout=2.0, max_seconds=120
    ).start()
    try:
        load.wait_for(50)
        load.event("SIGKILL lb1 kernlb + keepalived")
        killed = time.monotonic()
        lb1.server.kill9()
        lb1.kill_keepalived()
        lab.wait_master("lb2", timeout=10, exclusive=False)
        takeover = time.monotonic() - killed
        outcomes = exchange_all(lab, held)
        load.wait_for(50)
    finally:
        report = load.stop()
    print(f"SIGKILL: VIP on lb2 after {takeover:.2f} s; held {outcomes.count('alive')}/{HELD} "
          f"alive; {report.total} new connections, {report.failure_window()}")  # fmt: skip
    assert takeover <= 3.0
    assert outcomes == ["alive"] * HELD
    assert lb1.holds_vip()  # the SIGKILLed keepalived could not remove it (split brain)
    assert client.hello(VIP, 80).backend in BACKENDS  # made on lb1, answered by lb2
    assert client.hello(VIP, 81).backend in BACKENDS

    # 2. Failback: lb1 comes back (kernlb, keepalived), pre-empts, held connections live on.
    lb1.server.start(timeout=40)
    load = LoadGenerator(
        client, VIP, 80, CLIENT_SOURCES[:4], pause=0.02, timeout=2.0, max_seconds=120
    ).start()
    try:
        load.wait_for(20)
        load.event("lb1 restarts keepalived")
        restarted = time.monotonic()
        lb1.start_keepalived()
        lab.wait_master("lb1", timeout=20)
        back = time.monotonic() - restarted
        outcomes = exchange_all(lab, held)
        load.wait_for(50)
    finally:
        report = load.stop()
    print(f"failback: lb1 MASTER {back:.2f} s after its keepalived started; held "
          f"{outcomes.count('alive')}/{HELD} alive; {report.total} new connections, "
          f"{report.failure_window()}")  # fmt: skip
    assert outcomes == ["alive"] * HELD

    # 3. lb1's front link goes down: lb1 FAULT, lb2 takes over, held connections live on.
    load = LoadGenerator(
        client, VIP, 80, CLIENT_SOURCES[:4], pause=0.02, timeout=2.0, max_seconds=120
    ).start()
    try:
        load.wait_for(50)
        load.event("lb1 f0 down")
        down = time.monotonic()
        sh(ns_exec(lb1.ns, "ip", "link", "set", "f0", "down"))
        lab.wait_master("lb2", timeout=10)
        takeover = time.monotonic() - down
        outcomes = exchange_all(lab, held)
        load.wait_for(50)
    finally:
        report = load.stop()
    print(f"front link down: VIP on lb2 after {takeover:.2f} s; held "
          f"{outcomes.count('alive')}/{HELD} alive; {report.total} new connections, "
          f"{report.failure_window()}")  # fmt: skip
    assert takeover <= 3.0
    assert outcomes == ["alive"] * HELD


def cluster_params(node: LbNode) -> dict[str, Any]:
    params: dict[str, Any] = node.server.api.request("GET", "/system/cluster").expect(200)["params"]
    return params


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_the_health_leader_dies_and_another_node_still_detects_a_backend_failure(
    lab: ClusterLab,
) -> None:
    lb1, lb2 = lab.start_node("lb1"), lab.start_node("lb2")
    ids = lb1.server.api.setup_farm(
        "web", vip=VIP, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKENDS,
        nattype="dnat",
    )  # fmt: skip
    lb1.server.api.request(
        "PUT", "/farms/web/fg", {"fgenabled": "true", "fgscript": "check_tcp -H HOST -p PORT",
                                 "fgtimecheck": 1},
    ).expect(200)  # fmt: skip
    lab.wait_master("lb1", timeout=15)
    wait_for(lambda: cluster_params(lb2)["health_leader"] in ("lb1", "lb2"), timeout=10,
             what="a health leader")  # fmt: skip
    leader_name = cluster_params(lb2)["health_leader"]
    leader, other = (lb1, lb2) if leader_name == "lb1" else (lb2, lb1)
    killed = time.monotonic()
    leader.server.kill9()
    took = wait_for(lambda: cluster_params(other)["health_leader"] == other.name, timeout=10,
                    what=f"{other.name} leading the health checks")  # fmt: skip
    lab.stop_backend("b1")  # b1 fails
    stopped = time.monotonic()

    def b1_down() -> bool:
        farm = other.server.api.get_farm("web")
        return any(b["id"] == ids["b1"] and b["status"] == "down" for b in farm["backends"])

    detected = wait_for(b1_down, timeout=15, what="b1 down on the surviving node")
    client = Client(lab.client_exec)  # type: ignore[arg-type]
    # A node whose kernlb is dead no longer follows the database: keepalived's alive check
    # lowers its priority, so the VIPs are (or move) on the surviving node, which knows b1 is
    # down and schedules b2 only.
    lab.wait_master(other.name, timeout=15, exclusive=False)
    answers = {client.hello(VIP, 80).backend for _ in range(20)}
    print(f"\nhealth leadership moved {took:.2f} s after SIGKILL of {leader.name} "
          f"({time.monotonic() - killed:.2f} s total); b1 down on {other.name} "
          f"{detected:.2f} s after it stopped")  # fmt: skip
    assert answers == {"b2"}
    assert stopped - killed < 15


def test_a_node_restarted_while_the_database_is_down_keeps_forwarding_and_catches_up(
    tmp_path: Path,
) -> None:
    server = ThrowawayPostgres()  # its own: this test stops it
    server.start()
    try:
        with cluster_lab(tmp_path, server.create_database()) as lab:
            lb1, lb2 = lab.start_node("lb1", daemons=False), lab.start_node("lb2", daemons=False)
            # No VRRP here: lb1 holds the VIP and the backends' gateway, as a master would.
            sh(ns_exec(lb1.ns, "ip", "addr", "add", f"{VIP}/32", "dev", "f0"))
            sh(ns_exec(lb1.ns, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "b0"))
            lb1.server.api.setup_farm(
                "web", vip=VIP, vport="80", backends={"b1": {}, "b2": {}},
                backend_ips=BACKENDS, nattype="dnat",
            )  # fmt: skip
            converge(lab)
            client = Client(lab.client_exec)  # type: ignore[arg-type]
            assert client.hello(VIP, 80).backend in BACKENDS

            server.halt()
            lb1.server.kill9()
            lb1.server.start(timeout=40)  # starts without its database: the kernel has rules
            assert client.hello(VIP, 80).backend in BACKENDS  # still forwarding
            refused = lb1.server.api.request(
                "POST", "/farms", {"farmname": "api", "profile": "l4xnat", "vip": VIP,
                                   "vport": "81"},
            )  # fmt: skip
            assert refused.status == 503, refused.text
            assert refused.body["message"].startswith("The database is unavailable")
            params = cluster_params(lb1)
            assert params["database"] == "unreachable"
            assert params["nodes"][0]["lag"] is None

            server.start()

            def created() -> bool:
                made = lb2.server.api.request(
                    "POST", "/farms", {"farmname": "api", "profile": "l4xnat", "vip": VIP,
                                       "vport": "81"},
                )  # fmt: skip
                return made.status == 201

            wait_for(created, timeout=30, what="a write through lb2 after the database is back")
            lb2.server.api.edit_farm("api", nattype="dnat")
            lb2.server.api.add_backend("api", BACKENDS["b1"])
            caught_up = converge(lab, timeout=15)
            assert client.hello(VIP, 81).backend == "b1"  # through lb1, which caught up
            wait_for(lambda: cluster_params(lb1)["nodes"][0]["status"] == "ok", timeout=10,
                     what="lb1 in sync")  # fmt: skip
            print(f"\nlb1 restarted without its database kept forwarding; caught up "
                  f"{caught_up:.2f} s after the last write")  # fmt: skip
    finally:
        server.stop()


START_UP_PROBLEMS = {
    "unreachable database": (
        {"KERNLB_DB": "postgresql+psycopg://kernlb@/k?host=/nonexistent-kernlb-db"},
        "kernlb: cannot reach the database postgresql+psycopg://",
    ),
    "schema of a newer kernlb": ({}, "is at schema revision '9999_future', which this kernlb"),
    "keepalived missing": (
        {"KERNLB_KEEPALIVED_BIN": "no-such-keepalived"},
        "cluster mode needs keepalived",
    ),
    "conntrackd missing": (
        {"KERNLB_CONNTRACKD_BIN": "no-such-conntrackd"},
        "with a sync link needs conntrackd",
    ),
}


@pytest.mark.parametrize("problem", list(START_UP_PROBLEMS))
def test_kernlb_serve_refuses_to_start_and_names_the_problem(
    postgres: ThrowawayPostgres, tmp_path: Path, problem: str
) -> None:
    """`kernlb serve` as a node runs it (in a namespace of its own): exit code 2, one line on
    stderr naming what is wrong, nothing in the kernel."""
    require_netns()
    db = postgres.create_database()
    if problem == "schema of a newer kernlb":
        engine = create_engine(db)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        engine.dispose()
    overrides, expected = START_UP_PROBLEMS[problem]
    netns = Lab()
    try:
        ns = netns.add_netns(f"kcs{os.getpid()}x{list(START_UP_PROBLEMS).index(problem)}")
        env = {
            "KERNLB_DB": db,
            "KERNLB_NODE_NAME": "lb1",
            "KERNLB_CLUSTER": "true",
            "KERNLB_CLUSTER_INTERFACE": "f0",
            "KERNLB_CLUSTER_SYNC_INTERFACE": "s0",
            "KERNLB_CLUSTER_SYNC_ADDRESS": "198.18.22.1",
            "KERNLB_CLUSTER_SYNC_PEER": "198.18.22.2",
            **overrides,
        }
        server = ClusterServer(ns, tmp_path, env)
        try:
            done = subprocess.run(server.command(), capture_output=True, text=True, timeout=90)
        finally:
            server.close()
        assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
        assert expected in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert sh(ns_exec(ns, "nft", "list", "tables")).stdout.strip() == ""
    finally:
        netns.close()


def link_address(ns: str, device: str) -> str:
    return sh(ns_exec(ns, "cat", f"/sys/class/net/{device}/address")).stdout.strip()


def test_a_packet_before_the_commit_is_dropped_and_retransmitted_not_rescheduled(
    lab: ClusterLab,
) -> None:
    """conntrackd's commit window (ha-notes §5.5), made wide on purpose: the VIP moves to lb2
    by hand and a held connection sends before lb2 commits the synced connections. With
    nf_conntrack_tcp_loose=0 and kernlb's guard chain the packet is dropped (not scheduled
    afresh, not reset by the local VIP); the client's retransmission after the commit goes
    through to the same backend."""
    lb1, lb2 = lab.start_node("lb1", daemons=False), lab.start_node("lb2", daemons=False)
    lb1.start_conntrackd()
    lb2.start_conntrackd()
    for node in (lb1, lb2):
        loose = sh(ns_exec(node.ns, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose"))
        assert loose.stdout.strip() == "0"
    sh(ns_exec(lb1.ns, "ip", "addr", "add", f"{VIP}/32", "dev", "f0"))
    sh(ns_exec(lb1.ns, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "b0"))
    lb1.server.api.setup_farm(
        "web", vip=VIP, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKENDS,
        nattype="dnat",
    )  # fmt: skip
    converge(lab)
    assert "cluster-guard" in sh(ns_exec(lb2.ns, "nft", "list", "table", "inet", "kernlb")).stdout
    assert lab.client_exec is not None
    held = lab.client_exec.run(HeldConnection.open, VIP, 80, source=CLIENT_SOURCES[0])
    try:
        lab.client_exec.run(held.exchange)
        time.sleep(0.5)  # in lb2's external cache within milliseconds (ha-notes §4)

        # The VIP and the gateway move to lb2, and the neighbours follow, but nothing commits.
        sh(ns_exec(lb1.ns, "ip", "addr", "del", f"{VIP}/32", "dev", "f0"))
        sh(ns_exec(lb1.ns, "ip", "addr", "del", f"{GATEWAY}/24", "dev", "b0"))
        sh(ns_exec(lb2.ns, "ip", "addr", "add", f"{VIP}/32", "dev", "f0"))
        sh(ns_exec(lb2.ns, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "b0"))
        sh(ns_exec(lab.ns("cli"), "ip", "neigh", "replace", VIP, "lladdr",
                   link_address(lb2.ns, "f0"), "dev", "c0"))  # fmt: skip
        for backend in BACKENDS:
            sh(ns_exec(lab.ns(backend), "ip", "neigh", "replace", GATEWAY, "lladdr",
                       link_address(lb2.ns, "b0"), "dev", "eth0"))  # fmt: skip

        def send_and_listen(timeout: float) -> bytes | str:
            held.sock.sendall(b"inside the window\n")
            held.sock.settimeout(timeout)
            try:
                return held.sock.recv(4096)
            except TimeoutError:
                return "no answer"

        before_commit = lab.client_exec.run(send_and_listen, 1.5)
        assert before_commit == "no answer"  # neither an echo (rescheduled) nor a reset

        sh(ns_exec(lb2.ns, "sh", str(lb2.state_dir / "kernlb-notify.sh"), "MASTER"))

        def retransmitted() -> bytes:
            held.sock.settimeout(10)
            return held.sock.recv(4096)

        assert lab.client_exec.run(retransmitted) == b"inside the window\n"
        lab.client_exec.run(held.exchange)  # the same connection, the same backend
        entries = sh(ns_exec(lb2.ns, "conntrack", "-L", "-p", "tcp", "--orig-dst", VIP),
                     check=False).stdout  # fmt: skip
        assert f"src={BACKENDS[held.hello.backend]}" in entries, entries
    finally:
        held.close()


def conntrack_backends(ns: str) -> dict[str, set[str]]:
    """Client address -> the backends of its connections to the VIP in this node's table."""
    listing = sh(ns_exec(ns, "conntrack", "-L", "-p", "tcp", "--orig-dst", VIP), check=False)
    found: dict[str, set[str]] = {}
    for line in listing.stdout.splitlines():
        sources = [word[4:] for word in line.split() if word.startswith("src=")]
        if len(sources) == 2:
            client, backend = sources
            found.setdefault(client, set()).add(backend)
    return found


def test_active_active_behind_ecmp_a_hash_scheduler_sends_a_client_to_one_backend(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    """Both nodes active (no VRRP: the VIP on each node's loopback), the client's route to the
    VIP an ECMP route over both, spread by L4 hash: a `hash_srcip` farm made through lb1 sends
    every connection of a client address to the same backend, whichever node received it.
    Marks, slot tables and hash seeds derive from database ids, so both kernels agree."""
    with cluster_lab(
        tmp_path, postgres.create_database(), extra_env={"KERNLB_CLUSTER": "false"}
    ) as lab:
        for node in lab.nodes.values():
            sh(ns_exec(node.ns, "ip", "addr", "add", f"{VIP}/32", "dev", "lo"))
        lb1, lb2 = lab.start_node("lb1", daemons=False), lab.start_node("lb2", daemons=False)
        lb1.server.api.setup_farm(
            "web", vip=VIP, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKENDS,
            nattype="nat", algorithm="hash_srcip",
        )  # fmt: skip
        converge(lab)
        cli = lab.ns("cli")
        sh(ns_exec(cli, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"))
        sh(ns_exec(cli, "ip", "route", "add", f"{VIP}/32", "nexthop", "via", lb1.front, "dev",
                   "c0", "nexthop", "via", lb2.front, "dev", "c0"))  # fmt: skip
        client = Client(lab.client_exec)  # type: ignore[arg-type]
        seen: dict[str, set[str]] = {}
        for source in CLIENT_SOURCES:
            outcomes = client.many(VIP, 80, 16, sources=[source], concurrency=4)
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
            seen[source] = {o.hello.backend for o in outcomes if o.hello is not None}
        assert all(len(backends) == 1 for backends in seen.values()), seen
        on_lb1, on_lb2 = conntrack_backends(lb1.ns), conntrack_backends(lb2.ns)
        both = sorted(set(on_lb1) & set(on_lb2))
        # 16 connections a client, L4-hashed over two nodes: every client reaches both (a
        # client on one node only has odds of 2**-15).
        assert len(both) >= len(CLIENT_SOURCES) // 2, (on_lb1, on_lb2)
        for source in both:
            (backend,) = seen[source]
            assert on_lb1[source] == on_lb2[source] == {BACKENDS[backend]}, source
        picks = {source: ",".join(sorted(backends)) for source, backends in seen.items()}
        print(f"\nactive-active: {len(both)}/{len(CLIENT_SOURCES)} clients went through both "
              f"nodes, each to one backend: {picks}")  # fmt: skip
