#!/usr/bin/env python3
"""lbbench hook: kernlb (examples/apply_kernlb.py), then an IPDS blacklist on the target farm.

    KERNLB_IPDS_SOURCES=1000000 python3 ../shared/lbbench/run.py dataplane --variants ceiling \\
        --apply-cmd 'python3 bench/ipds_lbbench_hook.py {farms}' --hook-name kernlb-ipds1M

Runs inside the LB namespace, from the repository root.  After the stock hook has started
kernlb and created the farms, it creates a deny list of KERNLB_IPDS_SOURCES sources (default
1,000,000; 0 = no list: plain kernlb) in 10.0.0.0/8 (half /32, half /24: two lookups per
packet), none of which matches the benchmark client, applies it to the target farm, and
prints how long the list took through the API.  The client's connections then pay the IPDS
path (base chain, farm chain, one lookup per prefix length) on every packet.  The daemon's
request body limit is raised (KERNLB_BODY_LIMIT, default 1 MiB; 1,000,000 sources are ~17 MB
of JSON) unless it is set.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOOK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "lbbench", "examples")
BASE = "http://127.0.0.1:4480/zapi/v3.1/zapi.cgi"  # the stock hook's port and key
KEY = "benchKey0123456789"


def call(method: str, path: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{BASE}/{path}",
        data=data,
        method=method,
        headers={"ZAPI_KEY": KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=1800) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def sources(n: int) -> list[str]:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    out = []
    for i in range(n):
        if i % 2:
            out.append(str(ipaddress.IPv4Network((base + 256 * i, 24))))
        else:
            out.append(str(ipaddress.IPv4Address(base + 256 * i + 1)))
    return out


def main() -> None:
    farms_path = sys.argv[1]
    stock = os.environ.get("KERNLB_STOCK_HOOK") or os.path.join(HOOK, "apply_kernlb.py")
    # The stock hook starts the daemon with this environment: room for one large PUT.
    env = {"KERNLB_BODY_LIMIT": str(256 << 20), **os.environ}
    subprocess.run([sys.executable, stock, farms_path], check=True, env=env)
    count = int(os.environ.get("KERNLB_IPDS_SOURCES", "1000000"))
    if count <= 0:
        return
    with open(farms_path) as handle:
        target = json.load(handle)["target"]["farm"]
    status, body = call("POST", "ipds/blacklists", {"name": "bench", "policy": "deny"})
    assert status == 201, body
    started = time.perf_counter()
    status, body = call("PUT", "ipds/blacklists/bench", {"sources": sources(count)})
    loaded = time.perf_counter() - started
    assert status == 200, body
    status, body = call("POST", f"farms/{target}/ipds/blacklists", {"name": "bench"})
    assert status == 200, body
    print(f"kernlb-ipds: {count:,} sources loaded through the API in {loaded:.1f} s ({target})")


if __name__ == "__main__":
    main()
