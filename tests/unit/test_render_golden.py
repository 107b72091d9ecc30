"""The renderer against golden files.  KERNLB_UPDATE_GOLDEN=1 rewrites them: review the diff.

The files hold one nftables command per line, long slot tables summarised (tests/golden_cases.py);
tests/kernel/test_golden_kernel.py loads the full rulesets they stand for into a real kernel.
"""

from __future__ import annotations

import os

import pytest

from app.nft.diff import sync
from app.nft.render import render
from tests.golden_cases import (
    SHOWN_ELEMENTS,
    cases,
    expected_path,
    golden_text,
    load_state,
    rendered,
    summarise_elements,
)


@pytest.mark.parametrize("case", cases())
def test_render_matches_golden(case: str) -> None:
    output = golden_text(rendered(case))
    path = expected_path(case)
    if os.environ.get("KERNLB_UPDATE_GOLDEN") == "1":
        path.write_text(output)
    assert path.exists(), f"no golden file for {case}: run with KERNLB_UPDATE_GOLDEN=1"
    assert output == path.read_text()


@pytest.mark.parametrize("case", cases())
def test_render_is_deterministic(case: str) -> None:
    state = load_state(case)
    assert sync(render(state), None) == sync(render(list(reversed(state))), None)


def test_a_summary_changes_with_any_element() -> None:
    slots = [
        [81920 + i, "198.18.4.11" if i % 2 else "198.18.4.12"] for i in range(SHOWN_ELEMENTS * 4)
    ]
    summary = summarise_elements(slots)
    assert summary["count"] == len(slots)
    assert summary["per_value"] == {
        "198.18.4.11": len(slots) // 2,
        "198.18.4.12": len(slots) // 2,
    }
    swapped = [list(e) for e in slots]
    swapped[0][1], swapped[1][1] = swapped[1][1], swapped[0][1]  # same counts, other order
    assert summarise_elements(swapped)["per_value"] == summary["per_value"]
    assert summarise_elements(swapped)["sha256"] != summary["sha256"]
