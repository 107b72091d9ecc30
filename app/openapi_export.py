"""Build the OpenAPI document without touching a kernel or a real database."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.api.metrics import documented_paths
from app.main import create_app
from app.net.addresses import StaticAddressBook
from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter
from app.settings import Settings


@contextmanager
def spec_app() -> Iterator[FastAPI]:
    """An app made only to be described (never started): fake kernel, throw-away state."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=f"sqlite:///{tmp}/spec.db", state_dir=Path(tmp), resync_interval=0)
        yield create_app(
            settings, nft=FakeNftAdapter(), addresses=StaticAddressBook(), conntrack=NullConntrack()
        )


def build_spec() -> dict[str, Any]:
    with spec_app() as app:
        return app.openapi()


def spec_paths() -> list[str]:
    """The document's paths, in its order, read from the routes without building the document
    (~0.4 s of CPU); tests/api/test_metrics.py keeps the two equal."""
    with spec_app() as app:
        return documented_paths(app)


def render_spec() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"
