"""The drift check beside a large IPDS list (netlink, no libnftables listing), real kernel."""

from __future__ import annotations

import pytest

from tests.conftest import require_netns
from tests.kernel.netns import run_in, scenario_output, scratch_namespace

pytestmark = pytest.mark.netns

SCENARIO = r"""
import re, subprocess, sys, tempfile
from sqlalchemy import insert
from app.db.models import IpdsList, IpdsSource
from app.db.session import make_engine, make_session_factory, migrate
from app.nft.adapter import LibNftAdapter
from app.nft.netlink_elements import ElementOp, ElementWriter, ipv4
from app.reconcile.reconciler import LARGE_LIST_SOURCES, Reconciler

N = LARGE_LIST_SOURCES + 10_000
url = f"sqlite:///{tempfile.mkdtemp(prefix='kbdrift')}/db.sqlite"
migrate(url)
factory = make_session_factory(make_engine(url))
hosts = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(N)]
with factory() as session:
    session.add(IpdsList(id=1, name="big", type="local", policy="deny"))
    session.flush()
    session.execute(insert(IpdsSource), [
        {"list_id": 1, "zapi_id": i, "source": h, "family": 4} for i, h in enumerate(hosts)])
    session.commit()

reconciler = Reconciler(adapter=LibNftAdapter(), session_factory=factory,
                        elements=ElementWriter())
reconciler.full_sync()  # the list goes in through nfnetlink
assert reconciler.stats.bulk_elements == N, reconciler.stats
assert reconciler.check_drift() == []  # kernlb's own generation: takes the snapshot
assert reconciler.stats.drift_comparisons == 0

# a follower's catch-up with nobody else committing: a diff from what was applied (the new
# source only), not a listing and a reload of the whole list
with factory() as session:
    session.execute(insert(IpdsSource), [
        {"list_id": 1, "zapi_id": N, "source": "192.0.2.77", "family": 4}])
    session.commit()
reconciler.full_sync(trust_applied=True)
assert reconciler.stats.bulk_elements == N, reconciler.stats
out = subprocess.run(["nft", "get", "element", "inet", "kernlb", "l-1-4-32", "{ 192.0.2.77 }"],
                     capture_output=True, text=True)
assert out.returncode == 0, out.stderr
assert reconciler.check_drift() == []

# someone else's commit that changes nothing of kernlb's: compared, no drift
subprocess.run(["nft", "add", "table", "inet", "other"], check=True)
assert reconciler.check_drift() == []
assert reconciler.stats.drift_comparisons == 1

# someone deletes half of the list: found by the sampled lookups, repaired
ElementWriter().write([ElementOp("delete", "inet", "kernlb", "l-1-4-32",
                                 [ipv4(h) for h in hosts[::2]])])
problems = reconciler.check_drift()
print("list:", problems)
assert any("l-1-4-32 lacks" in p for p in problems), problems
assert reconciler.stats.repairs == 1
out = subprocess.run(["nft", "get", "element", "inet", "kernlb", "l-1-4-32", "{ 10.0.0.0 }"],
                     capture_output=True, text=True)
assert out.returncode == 0, out.stderr  # back after the repair

# a rule added to a kernlb chain
assert reconciler.check_drift() == []  # snapshot at the repair's generation
subprocess.run(["nft", "add", "rule", "inet", "kernlb", "nat-post", "accept"], check=True)
problems = reconciler.check_drift()
print("rule:", problems)
assert any("nat-post" in p for p in problems), problems
assert reconciler.stats.repairs == 2

# a rule rewritten in place (same count): found by the content digest of the snapshot
assert reconciler.check_drift() == []
listing = subprocess.run(["nft", "-a", "list", "chain", "inet", "kernlb", "nat-post"],
                         capture_output=True, text=True, check=True).stdout
handle = re.findall(r"# handle (\d+)", listing)[-1]
subprocess.run(["nft", "replace", "rule", "inet", "kernlb", "nat-post", "handle", handle,
                "accept"], check=True)
problems = reconciler.check_drift()
print("content:", problems)
assert problems == ["chain inet/nat-post changed"], problems
assert reconciler.stats.repairs == 3
print("OK")
"""


def test_drift_beside_a_large_list_is_found_and_repaired() -> None:
    require_netns()
    with scratch_namespace() as ns:
        scenario_output(ns, SCENARIO)
        assert run_in(ns, "nft", "list", "table", "inet", "other").returncode == 0
