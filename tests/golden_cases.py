"""Golden renderer cases: tests/golden/<case>/state.json -> expected.jsonl.

``expected.jsonl`` is the full ruleset the renderer commits for a fresh kernel (nftables JSON
commands), one command per line in order, so that a change shows as a readable diff. Element
lists longer than :data:`SHOWN_ELEMENTS` (the slot tables: thousands of ``slot -> backend``
pairs) are summarised: how many elements, how many map to each value, and a SHA-256 of the
whole list, so any change to them still changes the file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from app.domain.model import BackendSpec, FarmSpec
from app.domain.rules import parse_vport
from app.nft.diff import sync
from app.nft.render import render

GOLDEN_DIR = Path(__file__).parent / "golden"
SHOWN_ELEMENTS = 16


def cases() -> list[str]:
    return sorted(p.name for p in GOLDEN_DIR.iterdir() if (p / "state.json").exists())


def farm_from_json(item: dict[str, Any]) -> FarmSpec:
    backends = tuple(BackendSpec(**b) for b in item.get("backends", []))
    fields = {k: v for k, v in item.items() if k not in ("backends", "vport")}
    return FarmSpec(ports=parse_vport(item["vport"]), backends=backends, **fields)


def load_state(case: str) -> list[FarmSpec]:
    return [farm_from_json(i) for i in json.loads((GOLDEN_DIR / case / "state.json").read_text())]


def expected_path(case: str) -> Path:
    return GOLDEN_DIR / case / "expected.jsonl"


def rendered(case: str) -> dict[str, Any]:
    """The whole ruleset (nftables JSON) that a first commit of the case's state loads."""
    return {"nftables": sync(render(load_state(case)), None)}


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def summarise_elements(elements: list[Any]) -> dict[str, Any]:
    """A long element list as counts and a digest (map elements are [key, value] pairs)."""
    summary: dict[str, Any] = {"count": len(elements)}
    if all(isinstance(e, list) and len(e) == 2 for e in elements):
        per_value = Counter(v if isinstance(v, str) else _canonical(v) for _key, v in elements)
        summary["per_value"] = dict(sorted(per_value.items()))
    summary["sha256"] = hashlib.sha256(_canonical(elements).encode()).hexdigest()
    return summary


def _compact_command(command: dict[str, Any]) -> dict[str, Any]:
    ((verb, body),) = command.items()
    ((kind, obj),) = body.items()
    elements = obj.get("elem")
    if isinstance(elements, list) and len(elements) > SHOWN_ELEMENTS:
        obj = {**obj, "elem": {"summary": summarise_elements(elements)}}
    return {verb: {kind: obj}}


def golden_text(ruleset: dict[str, Any]) -> str:
    """The reviewable form of a ruleset: one command per line, long element lists summarised."""
    return "".join(
        json.dumps(_compact_command(c), sort_keys=True) + "\n" for c in ruleset["nftables"]
    )
