#!/usr/bin/env python3
"""IPDS list benchmark: loading a large list into the kernel, and what it costs afterwards.

Not a test: it prints figures.  Run as root from the repository root:

    .venv/bin/python bench/ipds_lists.py                 # 1,000,000 sources
    .venv/bin/python bench/ipds_lists.py --sizes 100000,1000000 --reps 3

In a private network namespace (`kbi<pid>`, deleted on exit), with kernlb's own renderer,
diff and libnftables adapter (the code the reconciler runs):

- build: the list rendered and turned into its batch (Python);
- load: that batch applied by libnftables (the kernel load of the list);
- add/delete one source with the list loaded (what `POST .../sources` sends: one element);
- one unrelated element change (a map element, as a farm change sends) with and without the
  large list in the ruleset.

Sources: half single addresses, half /30 networks, in 10.0.0.0/8 (never routed: the sets only
have to hold them): two hash sets, one per prefix length.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain.ipds import ListSpec
from app.net.netns import enter_netns
from app.nft.adapter import LibNftAdapter
from app.nft.diff import diff, sync
from app.nft.render import Ruleset, render_list, render_skeleton


def sources(n: int) -> frozenset[str]:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    out = []
    for i in range(n):
        addr = ipaddress.IPv4Address(base + 4 * i)
        out.append(f"{addr}/30" if i % 2 else str(addr))
    return frozenset(out)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(sizes: list[int], reps: int) -> None:
    adapter = LibNftAdapter()
    skeleton = render_skeleton()
    empty = Ruleset(skeleton=skeleton, farms={})
    adapter.apply(sync(empty, None))
    probe_map = [
        {
            "add": {
                "map": {
                    "family": "inet",
                    "table": "kernlb",
                    "name": "probe",
                    "type": "mark",
                    "map": "mark",
                }
            }
        }
    ]
    adapter.apply(probe_map)

    def map_change(i: int) -> None:
        element = {"family": "inet", "table": "kernlb", "name": "probe", "elem": [[i, i]]}
        adapter.apply([{"add": {"element": element}}])
        adapter.apply([{"delete": {"element": {**element, "elem": [i]}}}])

    base_change = statistics.median(
        timed(lambda i=i: map_change(i)) / 2 for i in range(1, reps + 1)
    )
    print(f"one map element change, no list loaded: {1000 * base_change:.1f} ms")
    for n in sizes:
        members = sources(n)
        spec = ListSpec(id=n, name=f"l{n}", policy="deny", members={4: members})
        started = time.perf_counter()
        new = Ruleset(skeleton=skeleton, farms={}, lists={spec.id: render_list(spec)})
        batch = diff(empty, new, farms=[], lists=[spec.id])
        build = time.perf_counter() - started
        load = timed(lambda batch=batch: adapter.apply(batch))
        set_name = f"l-{spec.id}-4-32"

        def one(verb: str, i: int, set_name: str = set_name) -> None:
            element = {
                "family": "inet",
                "table": "kernlb",
                "name": set_name,
                "elem": [f"11.0.0.{i}"],
            }
            adapter.apply([{verb: {"element": element}}])

        adds = [timed(lambda i=i: one("add", i)) for i in range(reps)]
        dels = [timed(lambda i=i: one("delete", i)) for i in range(reps)]
        other = statistics.median(timed(lambda i=i: map_change(i)) / 2 for i in range(1, reps + 1))
        print(
            f"{n:>9,} sources: build {build:.2f} s, kernel load {load:.2f} s "
            f"(total {build + load:.2f} s); one source add "
            f"{1000 * statistics.median(adds):.0f} ms, "
            f"delete {1000 * statistics.median(dels):.0f} ms; unrelated map element change "
            f"{1000 * other:.0f} ms (vs {1000 * base_change:.1f} ms without the list)"
        )
        adapter.apply(
            [
                {"delete": {"set": {"family": "inet", "table": "kernlb", "name": set_name}}},
                {
                    "delete": {
                        "set": {"family": "inet", "table": "kernlb", "name": f"l-{spec.id}-4-30"}
                    }
                },
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ns = f"kbi{os.getpid()}"
    # SIGTERM unwinds like Ctrl-C, so the namespace is deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            enter_netns(ns)
            run(sizes, args.reps)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    if failure:
        raise failure[0]


if __name__ == "__main__":
    main()
