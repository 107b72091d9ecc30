"""Drift by content (issue 11): tampers that keep every count are repaired within one interval.

Someone else edits kernlb's table in the LB namespace: (a) the address of a backend mark in
`bea4` is swapped for another host, (b) the farm chain is rewritten to send every connection to
one slot.  Neither changes a rule or element count.  Traffic proves each tamper took effect,
then that kernlb's periodic check (ruleset generation id, then object-by-object comparison)
put the ruleset back within one `--resync-interval`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from .kernlb import API_PORT, REPO_ROOT, Api, KernlbServer, kernlb_listing, normalized_listing
from .topology import BACKEND_IPS, VIP1, Topology, nft, ns_exec
from .traffic import Client

REPAIR_SLACK = 0.75  # seconds on top of one interval: the check itself, the listing poll


def _bea4(lb: str) -> dict[int, str]:
    for item in kernlb_listing(lb):
        body = item.get("map")
        if body and body["name"] == "bea4":
            return {int(k): v for k, v in body.get("elem", [])}
    raise AssertionError("no bea4 map")


def _farm_chain(lb: str) -> tuple[str, int]:
    """The farm chain and its slot offset (its first rule: `ct mark set numgen ... offset N`)."""
    for item in kernlb_listing(lb):
        rule = item.get("rule")
        if rule and rule["chain"].startswith("f-"):
            value = rule["expr"][0]["mangle"]["value"]
            if "numgen" in value:
                return rule["chain"], int(value["numgen"]["offset"])
    raise AssertionError("no farm chain with a numgen rule")


def _repair_time(lb: str, expected: list[str], *, tampered_at: float, limit: float) -> float:
    while normalized_listing(lb) != expected:
        assert time.monotonic() - tampered_at < limit, f"not repaired within {limit:.1f}s"
        time.sleep(0.05)
    return time.monotonic() - tampered_at


def _log_lines(kernlb: KernlbServer, needle: str) -> list[str]:
    return [line for line in kernlb.log_tail(2000).splitlines() if needle in line]


def _tamper_and_time(
    topo: Topology, kernlb: KernlbServer, script: str, *, effect: Callable[[], Any]
) -> float:
    expected = normalized_listing(topo.lb)
    nft(topo.lb, "-f", "-", stdin=script)  # one transaction, by someone else
    tampered_at = time.monotonic()
    effect()
    return _repair_time(
        topo.lb,
        expected,
        tampered_at=tampered_at,
        limit=kernlb.resync_interval + REPAIR_SLACK,
    )


def test_tampers_that_keep_counts_are_repaired_within_one_interval(
    topo: Topology, kernlb: KernlbServer, api: Api, client: Client
) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b2"}
    b1_mark = next(mark for mark, ip in _bea4(topo.lb).items() if ip == BACKEND_IPS["b1"])

    # (a) b1's mark now DNATs to b3: connections scheduled to b1 reach b3.
    swap = (
        f"delete element inet kernlb bea4 {{ {b1_mark} }}\n"
        f"add element inet kernlb bea4 {{ {b1_mark} : {BACKEND_IPS['b3']} }}\n"
    )
    seen: list[set[str]] = []
    address_repair = _tamper_and_time(
        topo, kernlb, swap, effect=lambda: seen.append(set(client.backends_of(VIP1, 80, 12)))
    )
    assert "b3" in seen[0], f"the tamper had no effect on traffic: {seen[0]}"
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b2"}

    # (b) the farm chain sends every connection to its first slot.
    chain, offset = _farm_chain(topo.lb)
    rewrite = (
        f"flush chain inet kernlb {chain}\n"
        f"add rule inet kernlb {chain} ct mark set {offset}\n"
        f"add rule inet kernlb {chain} goto slot-dnat4\n"
    )
    seen.clear()
    chain_repair = _tamper_and_time(
        topo, kernlb, rewrite, effect=lambda: seen.append(set(client.backends_of(VIP1, 80, 12)))
    )
    assert len(seen[0]) == 1, f"the tamper had no effect on traffic: {seen[0]}"
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b2"}

    print(
        f"\ndrift by content, --resync-interval {kernlb.resync_interval}s: bea4 address swap "
        f"repaired after {address_repair:.2f}s, farm chain rewrite after {chain_repair:.2f}s"
    )
    drift_lines = _log_lines(kernlb, "nftables drift")
    assert len(drift_lines) == 2, drift_lines
    assert "map inet/bea4" in drift_lines[0] and BACKEND_IPS["b3"] in drift_lines[0]
    assert f"chain inet/{chain} rule 1" in drift_lines[1]
    metrics = api.request("GET", f"http://127.0.0.1:{API_PORT}/metrics")
    assert metrics.status == 200, metrics.text
    assert "kernlb_reconcile_repairs_total 2.0" in metrics.text.splitlines()
    assert "kernlb_drift_comparisons_total 2.0" in metrics.text.splitlines()


def _sync_check(topo: Topology, kernlb: KernlbServer) -> subprocess.CompletedProcess[str]:
    db = f"sqlite:///{kernlb.workdir / 'kernlb.db'}"
    command = ns_exec(
        topo.lb, sys.executable, "-m", "app", "sync", "--check", "--db", db,
        "--state-dir", str(kernlb.workdir),
    )  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_sync_check_prints_the_differences_and_changes_nothing(
    topo: Topology, kernlb: KernlbServer, api: Api
) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    kernlb.stop()  # no periodic repair from here on
    clean = _sync_check(topo, kernlb)
    assert (clean.returncode, clean.stdout) == (0, "kernel in sync with the database\n"), clean

    b1_mark = next(mark for mark, ip in _bea4(topo.lb).items() if ip == BACKEND_IPS["b1"])
    nft(
        topo.lb,
        "-f",
        "-",
        stdin=(
            f"delete element inet kernlb bea4 {{ {b1_mark} }}\n"
            f"add element inet kernlb bea4 {{ {b1_mark} : {BACKEND_IPS['b3']} }}\n"
        ),
    )
    tampered = normalized_listing(topo.lb)
    found = _sync_check(topo, kernlb)
    assert found.returncode == 1, found
    assert found.stdout.splitlines() == [
        f'map inet/bea4 has unexpected elements [{b1_mark},"{BACKEND_IPS["b3"]}"]',
        f'map inet/bea4 lacks elements [{b1_mark},"{BACKEND_IPS["b1"]}"]',
    ]
    assert "2 difference(s)" in found.stderr
    assert normalized_listing(topo.lb) == tampered, "--check changed the ruleset"
