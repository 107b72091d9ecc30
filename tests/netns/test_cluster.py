"""A kernlb cluster with real traffic: two LB namespaces sharing a PostgreSQL database, VIPs by
keepalived (VRRP), connections by conntrackd (FTFW over a dedicated link).  Prints the figures
(run with -s): convergence, takeover time, failed new connections and their window."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import require_netns
from ..postgres import ThrowawayPostgres
from .cluster_lab import BACKENDS, CLIENT_SOURCES, VIP, ClusterLab
from .kernlb import normalized_listing
from .traffic import Client, HeldConnection, LoadGenerator, LoadReport

pytestmark = pytest.mark.netns

HELD = 20


@pytest.fixture
def lab(postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[ClusterLab]:
    require_netns()
    for daemon in ("keepalived", "conntrackd"):
        if shutil.which(daemon) is None and shutil.which(daemon, path="/usr/sbin") is None:
            pytest.fail(f"{daemon} is not installed (scripts/setup.sh --test installs it)")
    lab = ClusterLab(tmp_path, postgres.create_database())
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


def failure_window(report: LoadReport) -> str:
    failures = report.failures
    if not failures:
        return "no failed new connection"
    first = min(o.started for o in failures)
    last = max(o.started + o.elapsed for o in failures)
    return f"{len(failures)} failed new connections within {last - first:.2f} s"


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
          f"alive; {report.total} new connections, {failure_window(report)}")  # fmt: skip
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
          f"{failure_window(report)}")  # fmt: skip
    assert outcomes == ["alive"] * HELD

    # 3. lb1's front link goes down: lb1 FAULT, lb2 takes over, held connections live on.
    load = LoadGenerator(
        client, VIP, 80, CLIENT_SOURCES[:4], pause=0.02, timeout=2.0, max_seconds=120
    ).start()
    try:
        load.wait_for(50)
        load.event("lb1 f0 down")
        down = time.monotonic()
        from .topology import ns_exec, sh

        sh(ns_exec(lb1.ns, "ip", "link", "set", "f0", "down"))
        lab.wait_master("lb2", timeout=10)
        takeover = time.monotonic() - down
        outcomes = exchange_all(lab, held)
        load.wait_for(50)
    finally:
        report = load.stop()
    print(f"front link down: VIP on lb2 after {takeover:.2f} s; held "
          f"{outcomes.count('alive')}/{HELD} alive; {report.total} new connections, "
          f"{failure_window(report)}")  # fmt: skip
    assert takeover <= 3.0
    assert outcomes == ["alive"] * HELD
