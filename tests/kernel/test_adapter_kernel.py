"""The libnftables adapter, the diff and the sync batches against a real kernel."""

from __future__ import annotations

import pytest

from tests.conftest import require_netns
from tests.kernel.netns import run_in, scenario_output, scratch_namespace

pytestmark = pytest.mark.netns

SCENARIO = r"""
import dataclasses, hashlib, json, re, subprocess
from app.domain.model import BackendSpec, FarmSpec, PortRange
from app.nft.adapter import LibNftAdapter, NftError
from app.nft.diff import diff, drift, expected_summary, sync
from app.nft.render import render

def farm(fid, vip, port, **kw):
    backends = kw.pop("backends", (
        BackendSpec(mark=fid * 10 + 1, zapi_id=0, ip="198.18.2.1", port=8080),
        BackendSpec(mark=fid * 10 + 2, zapi_id=1, ip="198.18.2.2", port=None, weight=2)))
    return FarmSpec(id=fid, name=f"f{fid}", vip=vip, ports=(PortRange(port, port),),
                    backends=backends, **kw)

def text_listing():
    out = subprocess.run(["nft", "list", "table", "inet", "kernlb"], capture_output=True,
                         text=True, check=True).stdout
    # dynamic entries count down their expiry: not a change
    return re.sub(r" expires [0-9hms]+", "", out)

nft = LibNftAdapter()
f1 = farm(1, "198.18.0.10", 80, persistence="ip", ttl=300)
f2 = farm(2, "198.18.0.10", 81)
state = render([f1, f2])
nft.apply(sync(state, nft.summary()))
assert drift(expected_summary(state), nft.summary()) == [], "after first sync"

# persistence entries written by "traffic" (here: from userspace) must survive diffs
subprocess.run(["nft", "add", "element", "inet", "kernlb", "p-1",
                "{ 198.18.1.7 . 0x80000011 }"], check=True)

steps = [
    [dataclasses.replace(f1, algorithm="roundrobin"), f2],
    [f1, dataclasses.replace(f2, ports=(PortRange(82, 82), PortRange(1000, 2000)))],
    [dataclasses.replace(f1, backends=f1.backends[:1]), f2],
    [f1, dataclasses.replace(f2, running=False)],
    [f1, f2, farm(3, "2001:2::10", 80, backends=(
        BackendSpec(mark=31, zapi_id=0, ip="2001:2::1", port=None),))],
    [f1],
]
for number, farms in enumerate(steps):
    new = render(farms)
    nft.apply(diff(state, new))
    state = new
    assert drift(expected_summary(state), nft.summary()) == [], f"step {number}"
    assert "198.18.1.7 . 0x80000011" in text_listing(), f"persistence entry lost at {number}"

# a ttl change redefines the set (entries go, by necessity)
new = render([dataclasses.replace(f1, ttl=60)])
nft.apply(diff(state, new))
state = new
assert drift(expected_summary(state), nft.summary()) == []

# start-up sync over an existing table keeps matching dynamic sets and removes strays
subprocess.run(["nft", "add", "element", "inet", "kernlb", "p-1",
                "{ 198.18.1.8 . 0x80000011 }"], check=True)
subprocess.run(["nft", "add", "chain", "inet", "kernlb", "stray"], check=True)
subprocess.run(["nft", "flush", "chain", "inet", "kernlb", "f-1"], check=True)
assert drift(expected_summary(state), nft.summary()) != []
nft.apply(sync(state, nft.summary()))
assert drift(expected_summary(state), nft.summary()) == []
assert "198.18.1.8 . 0x80000011" in text_listing()

# a rejected batch changes nothing at all
before = hashlib.sha1(text_listing().encode()).hexdigest()
bad = diff(state, render([f1, f2]))
bad.append({"add": {"element": {"family": "inet", "table": "kernlb", "name": "disp4",
            "elem": [[{"concat": ["tcp", "198.18.0.99", 9]}, {"goto": {"target": "f-404"}}]]}}})
try:
    nft.apply(bad)
except NftError as exc:
    print("rejected:", exc.message)
else:
    raise AssertionError("batch with a dangling goto was accepted")
assert hashlib.sha1(text_listing().encode()).hexdigest() == before
print("OK")
"""


def test_diffs_sync_and_rejection_on_real_kernel() -> None:
    require_netns()
    with scratch_namespace() as ns:
        # a foreign table must never be touched
        foreign = "table inet hostfw {\n\tchain input {\n\t\ttype filter hook input priority 0;"
        foreign += " policy accept;\n\t\tcounter\n\t}\n}\n"
        assert run_in(ns, "nft", "-f", "-", stdin=foreign).returncode == 0
        before = run_in(ns, "nft", "list", "table", "inet", "hostfw").stdout
        output = scenario_output(ns, SCENARIO)
        assert "rejected:" in output
        assert run_in(ns, "nft", "list", "table", "inet", "hostfw").stdout == before
