"""Golden renderer cases: tests/golden/<case>/state.json -> expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.domain.model import BackendSpec, FarmSpec
from app.domain.rules import parse_vport

GOLDEN_DIR = Path(__file__).parent / "golden"


def cases() -> list[str]:
    return sorted(p.name for p in GOLDEN_DIR.iterdir() if (p / "state.json").exists())


def farm_from_json(item: dict[str, Any]) -> FarmSpec:
    backends = tuple(BackendSpec(**b) for b in item.get("backends", []))
    fields = {k: v for k, v in item.items() if k not in ("backends", "vport")}
    return FarmSpec(ports=parse_vport(item["vport"]), backends=backends, **fields)


def load_state(case: str) -> list[FarmSpec]:
    return [farm_from_json(i) for i in json.loads((GOLDEN_DIR / case / "state.json").read_text())]


def expected_path(case: str) -> Path:
    return GOLDEN_DIR / case / "expected.json"
