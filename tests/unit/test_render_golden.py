"""The renderer against golden files.  KERNLB_UPDATE_GOLDEN=1 rewrites them: review the diff.

tests/kernel/test_golden_kernel.py loads the same files into a real kernel.
"""

from __future__ import annotations

import json
import os

import pytest

from app.nft.diff import sync
from app.nft.render import render
from tests.golden_cases import cases, expected_path, load_state


def rendered(case: str) -> dict[str, object]:
    return {"nftables": sync(render(load_state(case)), None)}


@pytest.mark.parametrize("case", cases())
def test_render_matches_golden(case: str) -> None:
    output = json.dumps(rendered(case), indent=1, sort_keys=True) + "\n"
    path = expected_path(case)
    if os.environ.get("KERNLB_UPDATE_GOLDEN") == "1":
        path.write_text(output)
    assert path.exists(), f"no golden file for {case}: run with KERNLB_UPDATE_GOLDEN=1"
    assert output == path.read_text()


@pytest.mark.parametrize("case", cases())
def test_render_is_deterministic(case: str) -> None:
    state = load_state(case)
    assert sync(render(state), None) == sync(render(list(reversed(state))), None)
