"""The golden rulesets are valid for the real kernel: load each into a fresh namespace.

The stored goldens summarise the slot tables, so the full ruleset is rendered from state.json
(after checking that it is the one the golden file stands for) and that is what gets loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.nft.adapter import summarise_listing
from app.nft.diff import drift, expected_summary
from app.nft.render import render
from app.reconcile.reconciler import Reconciler
from tests.conftest import require_netns
from tests.golden_cases import cases, expected_path, golden_text, load_state, rendered
from tests.kernel.netns import run_in, scratch_namespace

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("case", cases())
def test_golden_loads_into_kernel(case: str, tmp_path: Path) -> None:
    require_netns()
    with scratch_namespace() as ns:
        # netdev farms forward out of eth0/eth1: `fwd` needs existing devices
        made = run_in(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        assert made.returncode == 0, made.stderr
        ruleset = rendered(case)
        assert golden_text(ruleset) == expected_path(case).read_text(), "golden file is stale"
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(ruleset))
        loaded = run_in(ns, "nft", "-j", "-f", str(path))
        assert loaded.returncode == 0, loaded.stderr
        objects = []
        for family in ("inet", "netdev"):
            listing = run_in(ns, "nft", "-j", "list", "table", family, "kernlb")
            assert listing.returncode == 0, listing.stderr
            objects.extend(json.loads(listing.stdout)["nftables"])
        summary = summarise_listing(objects)
        assert drift(expected_summary(render(load_state(case))), summary) == []
        # Content too: every rule and static element reads back as kernlb wrote it.
        assert Reconciler.differences(render(load_state(case)), objects) == []
