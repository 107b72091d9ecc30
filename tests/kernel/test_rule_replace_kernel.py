"""A farm's scheduling rule replaced in place (app.nft.diff `_replacements`, the adapter's
handle lookup over netlink), against a real kernel: the rule changes, its handle and the
chain's other rules stay, the libnftables cache is kept, and a chain someone else changed
makes the whole batch fail (nothing applied)."""

from __future__ import annotations

import pytest

from tests.conftest import require_netns
from tests.kernel.netns import scenario_output, scratch_namespace

pytestmark = pytest.mark.netns

SCENARIO = r"""
import dataclasses, subprocess
from app.domain.model import BackendSpec, FarmSpec, PortRange
from app.nft.adapter import LibNftAdapter, NftError
from app.nft.diff import diff, sync
from app.nft.netlink_rules import RuleHandles
from app.nft.render import render

def listing(chain):
    return subprocess.run(["nft", "-a", "list", "chain", "inet", "kernlb", chain],
                          capture_output=True, text=True, check=True).stdout

def backend(mark, zapi_id):
    return BackendSpec(mark=mark, zapi_id=zapi_id, ip=f"198.18.2.{zapi_id + 1}", port=None)

farms = [FarmSpec(id=i, name=f"f{i}", vip=f"198.18.0.{i}", ports=(PortRange(80, 80),),
                  backends=(backend(10 * i, 0), backend(10 * i + 1, 1))) for i in (1, 2)]
nft = LibNftAdapter()
nft.apply(sync(render(farms), None))
handles = RuleHandles().handles("inet", "kernlb", "f-2")
assert len(handles) == 2, handles
assert "numgen random mod 2" in listing("f-2")

grown = [farms[0], dataclasses.replace(farms[1], backends=(*farms[1].backends, backend(22, 2)))]
batch = diff(render(farms), render(grown))
assert [list(c) for c in batch].count(["replace"]) == 1, batch
assert not any("flush" in c for c in batch), batch
reused = nft.cache.reused
nft.apply(batch)
assert nft.cache.reused == reused + 1, "a replacement keeps libnftables' cache"
after = listing("f-2")
assert "numgen random mod 3" in after and "goto slot-dnat4" in after, after
assert RuleHandles().handles("inet", "kernlb", "f-2") == handles, "replaced in place"
assert "mod 2" in listing("f-1")

# Someone adds a rule to the chain: the next replacement must not guess; nothing applied.
subprocess.run(["nft", "add", "rule", "inet", "kernlb", "f-2", "counter"], check=True)
shrunk = render(farms)
try:
    nft.apply(diff(render(grown), shrunk))
except NftError as exc:
    assert "holds 3 rules, 2 expected" in exc.message, exc.message
else:
    raise AssertionError("a chain with a foreign rule was edited by position")
assert "mod 3" in listing("f-2")
bea4 = subprocess.run(["nft", "list", "map", "inet", "kernlb", "bea4"],
                      capture_output=True, text=True, check=True).stdout
assert "198.18.2.3" in bea4, "the failed batch's element changes were not applied either"

# A chain that does not exist lists no rule (the count check then refuses the batch).
assert RuleHandles().handles("inet", "kernlb", "f-404") == []
print("OK")
"""


def test_scheduling_rule_replaced_in_place() -> None:
    require_netns()
    with scratch_namespace() as ns:
        scenario_output(ns, SCENARIO)
