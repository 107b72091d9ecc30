#!/usr/bin/env python3
"""Per-connection cost of IPDS: the same farm with and without a large blacklist, interleaved.

Not a test: it prints figures.  Run as root from the repository root:

    .venv/bin/python bench/ipds_conn_cost.py --sources 1000000 --rounds 3

It builds the namespace topology of the traffic tests (tests/netns: client, LB running
`kernlb serve`, backends), creates one farm, loads a deny list of N sources (10.0.0.0/8, half
/32 and half /24: two lookups per packet; none matches the client) through the API, then
alternates: no list (plain kernlb: no IPDS chain at all) / a 2-entry list (same two lookups)
/ the large list, attached to the farm (every packet of the farm goes through the IPDS base
chain and the farm's chain).  Each phase opens
connections one after another and reports the median and p90 time per connection, and a
concurrent run's connections per second.  Interleaving makes both sides share the machine's
load; on a busy machine compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.netns.kernlb import KernlbServer
from tests.netns.topology import CLIENT_IPS, VIP1, Topology
from tests.netns.traffic import Client, tcp_hello

# The 1,000,000-source PUT is ~15 MB: above the server's default 1 MiB body limit.
os.environ.setdefault("KERNLB_BODY_LIMIT", str(128 * 1024 * 1024))


def sources(n: int) -> list[str]:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    return [
        str(ipaddress.IPv4Network((base + 256 * i, 24)))
        if i % 2
        else str(ipaddress.IPv4Address(base + 256 * i + 1))
        for i in range(n)
    ]


def sequential(client: Client, n: int) -> list[float]:
    def run() -> list[float]:
        times = []
        for i in range(n):
            started = time.perf_counter()
            tcp_hello(VIP1, 80, source=CLIENT_IPS[i % 10])
            times.append(time.perf_counter() - started)
        return times

    return client.executor.run(run)


def rate(client: Client, n: int) -> float:
    started = time.perf_counter()
    outcomes = client.many(VIP1, 80, n, sources=CLIENT_IPS[:10], concurrency=4)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=300)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kernlb-ipds-cost-") as tmp,
        Topology(workdir=Path(tmp)) as topo,
    ):
        server = KernlbServer(topo.lb, Path(tmp), resync_interval=0)
        try:
            server.start()
            api = server.api
            api._http.timeout = httpx.Timeout(1800.0)  # loading the list takes minutes here
            api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
            api.request("POST", "/ipds/blacklists", {"name": "big"}).expect(201)
            api.request("POST", "/ipds/blacklists", {"name": "small"}).expect(201)
            api.request("POST", "/ipds/blacklists/small/sources", {"source": "10.0.0.0/24"}).expect(
                201
            )
            api.request("POST", "/ipds/blacklists/small/sources", {"source": "10.0.0.1"}).expect(
                201
            )
            started = time.perf_counter()
            api.request("PUT", "/ipds/blacklists/big", {"sources": sources(args.sources)}).expect(
                200
            )
            print(
                f"{args.sources:,} sources through the API in {time.perf_counter() - started:.1f} s"
            )
            assert topo.client_exec is not None
            client = Client(topo.client_exec)
            sequential(client, 50)  # warm-up
            phases = {"no": None, "2-entry": "small", "large": "big"}
            results: dict[str, list[tuple[float, float, float]]] = {p: [] for p in phases}
            for _ in range(args.rounds):
                for phase, name in phases.items():
                    if name:
                        body = {"name": name}
                        api.request("POST", "/farms/web/ipds/blacklists", body).expect(200)
                    times = sorted(sequential(client, args.connections))
                    per_second = rate(client, args.connections)
                    if name:
                        api.request("DELETE", f"/farms/web/ipds/blacklists/{name}").expect(200)
                    p50 = statistics.median(times)
                    p90 = times[int(0.9 * len(times))]
                    results[phase].append((p50, p90, per_second))
                    print(
                        f"  {phase:>7} list: connection p50 {1e6 * p50:.0f} us, "
                        f"p90 {1e6 * p90:.0f} us; "
                        f"{per_second:.0f} connections/s (4 at a time)"
                    )
            for phase, rows in results.items():
                p50 = statistics.median(r[0] for r in rows)
                p90 = statistics.median(r[1] for r in rows)
                cps = statistics.median(r[2] for r in rows)
                print(
                    f"median {phase:>7}: p50 {1e6 * p50:.0f} us, p90 {1e6 * p90:.0f} us, "
                    f"{cps:.0f}/s"
                )
        finally:
            server.close()


if __name__ == "__main__":
    main()
