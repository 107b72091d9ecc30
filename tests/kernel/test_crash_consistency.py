"""Crash consistency (issue 11 item 7): SIGKILL at random moments during a stream of writes.

The real server (real SQLite file, real libnftables, in a scratch namespace) is killed with
SIGKILL at a random moment while a client streams writes (create farm, add backend, delete
farm), then restarted.  After every restart:
- every acknowledged write is in the database (read back through the API);
- the kernel agrees with the database: the dispatcher holds exactly the database's farms and
  the address map exactly their backends (a write applied to the kernel but not committed
  when the process died is gone, so no unacknowledged write stays half-applied);
- an unacknowledged write is all or nothing (a farm without its dispatcher entry, or a backend
  without its address, would show as a disagreement).

SQLite runs with journal_mode=WAL and synchronous=FULL (app/db/session.py): a commit is in the
WAL, fsynced, before the API answers, so it survives a process kill (and a power cut).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.net.lab import kernlb_serve_argv
from tests.conftest import require_netns
from tests.kernel.netns import REPO, run_in, scratch_namespace
from tests.netns.nsexec import NetnsExecutor
from tests.netns.zygote import ZygoteProcess, worker_zygote

# slow: about a minute of SIGKILLs; under xdist it starts first (tests/conftest.py).
pytestmark = [pytest.mark.netns, pytest.mark.slow]

KILLS = 50
PORT = 8446
KEY = "CrashTestKey1234"
VIP = "198.18.0.10"
BASE = f"http://127.0.0.1:{PORT}/zapi/v3.1/zapi.cgi"


@dataclass
class Ledger:
    """What the server acknowledged (2xx received), in order."""

    farms: dict[str, set[str]] = field(default_factory=dict)  # farm -> backend ips
    acknowledged: int = 0
    unacknowledged: int = 0
    next_farm: int = 0
    deleting: str | None = None  # the farm of an interrupted delete: it may be gone or not


def _writes(
    ledger: Ledger, stop: threading.Event, streaming: threading.Event, rng: random.Random
) -> None:
    """Stream writes until the connection breaks (the kill) or `stop` is set."""
    with httpx.Client(base_url=BASE, headers={"ZAPI_KEY": KEY}, timeout=5.0) as http:
        while not stop.is_set():
            names = sorted(ledger.farms)
            choice = rng.random()
            try:
                if not names or (choice < 0.35 and len(names) < 12):
                    name = f"f{ledger.next_farm}"
                    port = 1000 + ledger.next_farm
                    body = {"farmname": name, "profile": "l4xnat", "vip": VIP, "vport": port}
                    response = http.post("/farms", json=body)
                    if response.status_code == 201:
                        ledger.farms[name] = set()
                        ledger.next_farm += 1
                elif choice < 0.85:
                    name = rng.choice(names)
                    ip = f"198.18.2.{rng.randrange(1, 250)}"
                    if ip in ledger.farms[name]:
                        continue
                    response = http.post(f"/farms/{name}/backends", json={"ip": ip, "port": 80})
                    if response.status_code == 201:
                        ledger.farms[name].add(ip)
                else:
                    name = rng.choice(names)
                    ledger.deleting = name
                    response = http.delete(f"/farms/{name}")
                    if response.status_code == 200:
                        del ledger.farms[name]
            except httpx.HTTPError:
                ledger.unacknowledged += 1
                return  # killed mid-request: outcome unknown, not in the ledger
            assert response.status_code < 300, response.text
            ledger.deleting = None
            ledger.acknowledged += 1
            streaming.set()


def _kernel(ns: str) -> tuple[set[int], list[str]]:
    """Ports in the dispatcher and backend addresses in bea4, from the kernel."""
    listing = run_in(ns, "nft", "-j", "list", "table", "inet", "kernlb")
    assert listing.returncode == 0, listing.stderr
    ports: set[int] = set()
    addresses: list[str] = []
    for item in json.loads(listing.stdout)["nftables"]:
        body = item.get("map")
        if not body:
            continue
        if body["name"] == "disp4":
            ports.update(int(key["concat"][2]) for key, _ in body.get("elem", []))
        elif body["name"] == "bea4":
            addresses.extend(value for _, value in body.get("elem", []))
    return ports, sorted(addresses)


def _database(http: httpx.Client) -> dict[str, tuple[int, set[str]]]:
    farms = http.get("/farms").json()["params"]
    result = {}
    for farm in farms:
        detail = http.get(f"/farms/{farm['farmname']}").json()
        ips = {b["ip"] for b in detail["backends"]}
        result[farm["farmname"]] = (int(farm["vport"]), ips)
    return result


def _wait_ready(executor: NetnsExecutor, server: ZygoteProcess, deadline: float) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{BASE}/system/version", headers={"ZAPI_KEY": KEY}).status_code == 200
        except httpx.HTTPError:
            return False

    while not executor.run(ready):
        assert server.poll() is None, f"kernlb exited with rc={server.returncode}"
        assert time.monotonic() < deadline, "kernlb did not come back"
        time.sleep(0.02)


def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    require_netns()
    rng = random.Random(11)
    ledger = Ledger()
    started = time.monotonic()
    with scratch_namespace() as ns, NetnsExecutor(ns, workers=2) as executor:
        assert run_in(ns, "ip", "link", "set", "lo", "up").returncode == 0
        # The worker's zygote forks each server (tests/netns/zygote.py): a restart costs the
        # start-up work only (migrations check, full sync, listen), not the imports again.
        argv = kernlb_serve_argv(
            port=PORT,
            db=tmp_path / "kernlb.db",
            state_dir=tmp_path,
            resync_interval=0,
            key=KEY,
            extra=["--no-vip-check"],
        )
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KERNLB_LOAD_INTERVAL": "0",
            "KERNLB_IP_FORWARD": "false",
            "KERNLB_LOG_LEVEL": "warning",
        }
        zygote = worker_zygote()
        server: ZygoteProcess | None = None
        try:
            kills = 0
            while kills < KILLS:
                server = zygote.spawn(ns, argv[3:], env=env, cwd=REPO, log=tmp_path / "kernlb.log")
                _wait_ready(executor, server, time.monotonic() + 30)
                with httpx.Client(base_url=BASE, headers={"ZAPI_KEY": KEY}) as http:
                    in_db = executor.run(_database, http)
                # Every acknowledged write is there, with nothing else but the outcome of
                # the one request the kill interrupted.
                for name, ips in ledger.farms.items():
                    if name == ledger.deleting and name not in in_db:
                        continue  # the interrupted delete committed before the kill
                    assert name in in_db, f"after kill {kills}: acknowledged farm {name} lost"
                    assert ips <= in_db[name][1], f"after kill {kills}: backends of {name} lost"
                ports, addresses = _kernel(ns)
                assert ports == {port for port, _ in in_db.values()}, f"after kill {kills}"
                assert addresses == sorted(ip for _, ips in in_db.values() for ip in ips)
                # Adopt the interrupted write's outcome (it may or may not have committed).
                ledger.farms = {name: ips for name, (_, ips) in in_db.items()}
                ledger.next_farm = max([ledger.next_farm, *(int(n[1:]) + 1 for n in in_db)])

                stop, streaming = threading.Event(), threading.Event()
                writer = executor.submit(_writes, ledger, stop, streaming, rng)
                assert streaming.wait(timeout=30), "no write was acknowledged"
                time.sleep(rng.uniform(0, 0.2))  # a random moment in the stream
                server.kill()
                kills += 1
                stop.set()
                writer.result(timeout=30)
                assert server.wait(timeout=10) == -signal.SIGKILL
        finally:
            if server is not None:
                server.kill()
                server.wait(timeout=10)
    elapsed = time.monotonic() - started
    print(
        f"\n{KILLS} SIGKILLs in {elapsed:.0f}s: {ledger.acknowledged} acknowledged writes, all "
        f"in database and kernel; {ledger.unacknowledged} interrupted, none half-applied"
    )
    assert ledger.acknowledged >= KILLS, "the kills did not interrupt a stream of writes"
