"""libnftables' cache kept across kernlb's own batches (app/nft/adapter.py, CacheKeeper),
against a real kernel: kept only after batches that change nothing it caches, and thrown
away as soon as anyone else commits."""

from __future__ import annotations

import pytest

from tests.conftest import require_netns
from tests.kernel.netns import scenario_output, scratch_namespace

pytestmark = pytest.mark.netns

SCENARIO = r"""
import subprocess
from app.nft.adapter import LibNftAdapter, NftError

T = {"family": "inet", "table": "kernlb"}
nft = LibNftAdapter()
assert nft.cache.offset is not None, "nftables 1.0.6 expected (its nft_ctx layout is known)"

def rule(chain, mod):
    expr = [{"mangle": {"key": {"meta": {"key": "mark"}},
                        "value": {"numgen": {"mode": "random", "mod": mod, "offset": 100}}}},
            {"goto": {"target": "slot"}}]
    return {"add": {"rule": {**T, "chain": chain, "expr": expr}}}

def element(name, key, value):
    return {"add": {"element": {**T, "name": name, "elem": [[key, value]]}}}

nft.apply([{"add": {"table": {"family": "inet", "name": "kernlb"}}},
           {"add": {"chain": {**T, "name": "slot"}}},
           {"add": {"chain": {**T, "name": "f-1"}}},
           {"add": {"map": {**T, "name": "bea4", "type": "mark", "map": "ipv4_addr"}}},
           {"add": {"map": {**T, "name": "ranges", "type": "mark", "map": "mark",
                            "flags": ["interval"]}}}])
assert nft.cache.reused == 0, "declaring objects changes the cache: never kept"

# The add-a-backend shape: flush + refill a farm chain, map elements.  Kept each time.
for n in range(2, 6):
    nft.apply([{"flush": {"chain": {**T, "name": "f-1"}}}, rule("f-1", n),
               element("bea4", n, f"198.18.2.{n}")])
assert nft.cache.reused == 4, nft.cache.reused

# Elements of an interval map are cached by libnftables: not kept after touching them.
nft.apply([element("ranges", {"range": [10, 20]}, 1)])
assert nft.cache.reused == 4

# Someone else commits (a new chain, a map re-declared with another type): kernlb's next
# batch must see it, i.e. libnftables reads its cache again.
for n in range(6, 8):
    nft.apply([element("bea4", n, f"198.18.2.{n}")])
foreign = ("add chain inet kernlb f-2\ndelete map inet kernlb bea4\n"
           "add map inet kernlb bea4 { type mark : ipv6_addr; }\n")
subprocess.run(["nft", "-f", "-"], input=foreign, text=True, check=True)
nft.apply([rule("f-2", 3)])                      # a stale cache would not know f-2
nft.apply([element("bea4", 9, "2001:2::9")])     # nor bea4's new type
try:
    nft.apply([element("bea4", 10, "198.18.2.10")])
except NftError:
    pass
else:
    raise AssertionError("an IPv4 address went into an ipv6_addr map")
listing = subprocess.run(["nft", "list", "map", "inet", "kernlb", "bea4"], capture_output=True,
                         text=True, check=True).stdout
assert "2001:2::9" in listing, listing

# A rejected batch drops the cache; the next one reads it again and works.
try:
    nft.apply([{"flush": {"chain": {**T, "name": "f-404"}}}])
except NftError:
    pass
nft.apply([{"flush": {"chain": {**T, "name": "f-1"}}}, rule("f-1", 2)])
print("OK", nft.cache.reused)
"""


def test_cache_kept_only_after_own_neutral_batches() -> None:
    require_netns()
    with scratch_namespace() as ns:
        scenario_output(ns, SCENARIO)
