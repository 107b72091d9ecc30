"""dataplane.md §4.18 and §1: kill -9 and restart under load; foreign tables untouched."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .kernlb import Api, KernlbServer, normalized_listing
from .topology import BACKEND_IPS, CLIENT_IPS, VIP1, VIP2, Topology, nft, ns_exec, stop_process
from .traffic import Client

pytestmark = pytest.mark.netns


class NftMonitor:
    """``nft monitor`` in a namespace, to see what a restart does to the ruleset."""

    def __init__(self, ns: str, path: Path) -> None:
        self.path = path
        with path.open("wb") as out:
            self.proc = subprocess.Popen(
                ns_exec(ns, "nft", "monitor"),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        time.sleep(0.3)  # let it subscribe before anything happens

    def stop(self) -> list[list[str]]:
        """The events seen, one list per committed transaction (generation)."""
        stop_process(self.proc)
        transactions: list[list[str]] = [[]]
        for line in self.path.read_text(errors="replace").splitlines():
            if line.startswith("# new generation"):
                transactions.append([])
            elif line and not line.startswith("W:"):
                transactions[-1].append(line)
        return [t for t in transactions if t]


def _chains_emptied_in_place(transactions: list[list[str]]) -> list[str]:
    """Chains whose rules a transaction deleted without adding any back (a flush window)."""
    problems = []
    for number, events in enumerate(transactions, 1):
        deleted = {e.split()[4] for e in events if e.startswith("delete rule inet kernlb ")}
        added = {e.split()[4] for e in events if e.startswith("add rule inet kernlb ")}
        problems += [f"transaction {number}: {chain}" for chain in sorted(deleted - added)]
    return problems


def test_kill9_and_restart_keep_traffic_flowing(
    topo: Topology, kernlb: KernlbServer, api: Api, client: Client, tmp_path: Path
) -> None:
    foreign_before = topo.foreign_tables()
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {"weight": 2}})
    api.setup_farm("alt", vip=VIP2, vport="80,443", backends={"b3": {"port": 8080}}, nattype="dnat")
    listing_before = normalized_listing(topo.lb)

    load = client.load(
        VIP1, 80, sources=CLIENT_IPS[1:5], max_connections=6000, max_seconds=120, pause=0.01
    )
    monitor: NftMonitor | None = None
    held = client.hold(VIP1, 80)
    held_outcomes: list[str] = []
    try:
        load.start()
        load.wait_for(100)
        load.event("kill -9")
        kernlb.kill9()
        load.wait_for(300)
        held_outcomes.append(held.exchange_outcome())
        assert client.backends_of(VIP2, 443, 20) == {"b3": 20}

        monitor = NftMonitor(topo.lb, tmp_path / "nft-monitor.txt")
        load.event("restart")
        started = time.monotonic()
        kernlb.start()
        ready_after = time.monotonic() - started
        load.event("running again")
        held_outcomes.append(held.exchange_outcome())
        time.sleep(2.5 * kernlb.resync_interval)  # let periodic resyncs run under load
        load.wait_for(100)
        held_outcomes.append(held.exchange_outcome())
    finally:
        report = load.stop()
        transactions = monitor.stop() if monitor is not None else []
        held.close()

    print(f"\nkill -9 + restart (ready after {ready_after:.1f}s): {report.summary()}")
    print(f"ruleset transactions during restart: {[len(t) for t in transactions]} events")
    for number, events in enumerate(transactions, 1):
        for line in events[:60]:
            print(f"  [{number}] {line}")
    assert not report.failures, f"connections failed around the restart: {report.summary()}"
    assert report.total >= 500
    destructive = [
        line
        for events in transactions
        for line in events
        if line.split()[:2] in (["delete", "table"], ["delete", "chain"])
        and line.split()[2:4] == ["inet", "kernlb"]
    ]
    assert not destructive, f"restart deleted kernlb objects: {destructive}"
    emptied = _chains_emptied_in_place(transactions)
    assert not emptied, f"restart emptied chains without refilling them atomically: {emptied}"
    assert held_outcomes == ["alive"] * 3, f"held connection across the restart: {held_outcomes}"
    assert normalized_listing(topo.lb) == listing_before, "restart changed the ruleset"

    # The API works again and the data plane follows it.
    farm = api.get_farm("web")
    assert sorted(b["ip"] for b in farm["backends"]) == [BACKEND_IPS["b1"], BACKEND_IPS["b2"]]
    api.add_backend("web", BACKEND_IPS["b3"], weight=3)
    counts = client.backends_of(VIP1, 80, 120)
    print(f"after restart, b3 added with weight 3: {dict(counts)}")
    assert counts["b3"] >= 30, counts
    hello = client.hello(VIP2, 80, source=CLIENT_IPS[6])
    assert (hello.backend, hello.peer_ip, hello.local_port) == ("b3", CLIENT_IPS[6], 8080)

    assert topo.foreign_tables() == foreign_before, "a foreign table changed"


@pytest.mark.parametrize(
    "damage",
    [("flush", "chain", "inet", "kernlb", "dispatch4"), ("delete", "table", "inet", "kernlb")],
    ids=["flush-dispatcher", "delete-table"],
)
def test_periodic_resync_repairs_drift(
    topo: Topology, kernlb: KernlbServer, api: Api, client: Client, damage: tuple[str, ...]
) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    listing_before = normalized_listing(topo.lb)
    foreign_before = topo.foreign_tables()

    nft(topo.lb, *damage)  # someone else damages kernlb's table in the LB namespace
    assert client.refused(VIP1, 80, tries=1), "damage did not stop the capture"

    deadline = time.monotonic() + 5 * kernlb.resync_interval
    started = time.monotonic()
    while not client.attempt(VIP1, 80, timeout=1.0).ok:
        assert time.monotonic() < deadline, f"no repair within {5 * kernlb.resync_interval}s"
        time.sleep(0.2)
    print(f"\n{' '.join(damage)}: repaired after {time.monotonic() - started:.1f}s")

    assert set(client.backends_of(VIP1, 80, 60)) == {"b1", "b2"}
    assert normalized_listing(topo.lb) == listing_before, "the repaired table differs"
    assert topo.foreign_tables() == foreign_before
