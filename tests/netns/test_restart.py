"""dataplane.md §4.18 and §1: kill -9 and restart under load; foreign tables untouched."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .kernlb import Api, KernlbServer, normalized_listing
from .topology import BACKEND_IPS, CLIENT_IPS, VIP1, VIP2, Topology, ns_exec, stop_process
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

    def stop(self) -> list[str]:
        stop_process(self.proc)
        return self.path.read_text(errors="replace").splitlines()


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
    try:
        load.start()
        load.wait_for(100)
        load.event("kill -9")
        kernlb.kill9()
        load.wait_for(300)
        assert client.backends_of(VIP2, 443, 20) == {"b3": 20}

        monitor = NftMonitor(topo.lb, tmp_path / "nft-monitor.txt")
        load.event("restart")
        started = time.monotonic()
        kernlb.start()
        ready_after = time.monotonic() - started
        load.event("running again")
        time.sleep(2.5 * kernlb.resync_interval)  # let periodic resyncs run under load
        load.wait_for(100)
    finally:
        report = load.stop()
        events = monitor.stop() if monitor is not None else []

    print(f"\nkill -9 + restart (ready after {ready_after:.1f}s): {report.summary()}")
    changes = [line for line in events if line and not line.startswith("#")]
    generations = [line for line in events if line.startswith("# new generation")]
    print(f"ruleset changes during restart: {len(changes)} in {len(generations)} transactions")
    for line in events[:200]:
        print(f"  {line}")
    assert not report.failures, f"connections failed around the restart: {report.summary()}"
    assert report.total >= 500
    destructive = [
        line
        for line in changes
        if line.startswith(("delete table inet kernlb", "delete chain inet kernlb"))
    ]
    assert not destructive, f"restart deleted kernlb objects: {destructive}"
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
