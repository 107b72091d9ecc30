#!/usr/bin/env python3
"""IPDS list benchmark: loading a large list into the kernel, and what it costs afterwards.

Not a test: it prints figures.  Run as root from the repository root:

    .venv/bin/python bench/ipds_lists.py                 # 1,000,000 sources
    .venv/bin/python bench/ipds_lists.py --sizes 100000,1000000 --reps 3

In a private network namespace (`kbi<pid>`, deleted on exit), with kernlb's own renderer,
diff and apply path (the code the reconciler runs: `Reconciler.apply_batch`, which sends
the elements of a large list through nfnetlink, app/nft/bulk.py; `--libnftables`: all of it
through libnftables, as before):

- build: the list rendered and turned into its batch (Python);
- load: that batch applied (split: elements to bytes; encode: the nfnetlink messages;
  the rest is the kernel, libnftables' two small steps and the acks);
- floor: in the same run, the same number of addresses into a bare hash set (sized as kernlb
  sizes its list sets) with one raw nfnetlink batch (bench/ipds_kernel_floor.py's
  `netlink_fill`): the kernel's own cost, so a busy machine's figures can be read as a ratio;
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
from app.nft.bulk import split_bulk
from app.nft.diff import diff, sync
from app.nft.ipds import list_set_tier
from app.nft.netlink_elements import ElementWriter, encode_batch
from app.nft.render import Ruleset, render_list, render_skeleton
from app.reconcile.reconciler import Reconciler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ipds_kernel_floor import netlink_fill


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


def floor(n: int) -> float:
    """Seconds the kernel takes n IPv4 addresses in one raw nfnetlink batch (no kernlb)."""
    adapter = LibNftAdapter()
    table = {"family": "inet", "table": "kbfloor"}
    tier = list_set_tier(n)
    sized = {"size": 1 << tier} if tier else {}
    adapter.apply(
        [
            {"add": {"table": {"family": "inet", "name": "kbfloor"}}},
            # sized like kernlb's list sets (a fixed hash from SIZED_FROM elements on)
            {"add": {"set": {**table, "name": "floor", "type": "ipv4_addr", **sized}}},
        ]
    )
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    keys = [(base + 4 * i).to_bytes(4, "big") for i in range(n)]
    started = time.perf_counter()
    netlink_fill("kbfloor", "floor", keys)
    took = time.perf_counter() - started
    adapter.apply([{"delete": {"table": {"family": "inet", "name": "kbfloor"}}}])
    return took


def run(sizes: list[int], reps: int, *, netlink: bool) -> None:
    adapter = LibNftAdapter()
    reconciler = Reconciler(
        adapter=adapter,
        session_factory=lambda: None,  # type: ignore[arg-type, return-value]
        elements=ElementWriter() if netlink else None,
    )
    skeleton = render_skeleton()
    empty = Ruleset(skeleton=skeleton, farms={})
    reconciler.apply_batch(sync(empty, None))
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
    reconciler.apply_batch(probe_map)

    def map_change(i: int) -> None:
        element = {"family": "inet", "table": "kernlb", "name": "probe", "elem": [[i, i]]}
        reconciler.apply_batch([{"add": {"element": element}}])
        reconciler.apply_batch([{"delete": {"element": {**element, "elem": [i]}}}])

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
        split_s = encode_s = 0.0
        if netlink:
            started = time.perf_counter()
            split = split_bulk(batch)
            split_s = time.perf_counter() - started
            assert split is not None
            started = time.perf_counter()
            encode_batch(split.elements)
            encode_s = time.perf_counter() - started
            del split
        load = timed(lambda batch=batch: reconciler.apply_batch(batch))
        floor_s = floor(n) if netlink else 0.0
        # The /32 set (named with its size tier when the list is large).
        names = [name.split("/", 1)[1] for name in new.lists[spec.id].sets]
        set_name = next(name for name in names if name.startswith(f"l-{spec.id}-4-32"))

        def one(verb: str, i: int, set_name: str = set_name) -> None:
            element = {
                "family": "inet",
                "table": "kernlb",
                "name": set_name,
                "elem": [f"11.0.0.{i}"],
            }
            reconciler.apply_batch([{verb: {"element": element}}])

        adds = [timed(lambda i=i: one("add", i)) for i in range(reps)]
        dels = [timed(lambda i=i: one("delete", i)) for i in range(reps)]
        other = statistics.median(timed(lambda i=i: map_change(i)) / 2 for i in range(1, reps + 1))
        if netlink:
            print(
                f"{n:>9,} sources through nfnetlink: load {load:.2f} s = split "
                f"{split_s:.2f} s + encode {encode_s:.2f} s + kernel and libnftables "
                f"{load - split_s - encode_s:.2f} s; in-run floor (raw nfnetlink, bare set) "
                f"{floor_s:.2f} s; load / floor {load / floor_s:.2f}; "
                f"build + load / floor {(build + load) / floor_s:.2f}"
            )
        print(
            f"{n:>9,} sources: build {build:.2f} s, kernel load {load:.2f} s "
            f"(total {build + load:.2f} s); one source add "
            f"{1000 * statistics.median(adds):.0f} ms, "
            f"delete {1000 * statistics.median(dels):.0f} ms; unrelated map element change "
            f"{1000 * other:.0f} ms (vs {1000 * base_change:.1f} ms without the list)"
        )
        reconciler.apply_batch(
            [
                {"delete": {"set": {"family": "inet", "table": "kernlb", "name": name}}}
                for name in names
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--libnftables", action="store_true", help="load through libnftables (before)"
    )
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
            run(sizes, args.reps, netlink=not args.libnftables)
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
