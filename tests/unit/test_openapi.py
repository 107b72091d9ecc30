"""openapi/openapi.json is generated from the app: fail when it is stale."""

from __future__ import annotations

from pathlib import Path

from app.openapi_export import render_spec

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_checked_in_spec_matches_the_app() -> None:
    assert SPEC.read_text() == render_spec(), (
        "openapi/openapi.json is stale: run `python -m app openapi > openapi/openapi.json`"
    )
