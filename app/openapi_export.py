"""Build the OpenAPI document without touching a kernel or a real database."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from app.main import create_app
from app.net.addresses import StaticAddressBook
from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter
from app.settings import Settings


def build_spec() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=f"sqlite:///{tmp}/spec.db", state_dir=Path(tmp), resync_interval=0)
        app = create_app(
            settings, nft=FakeNftAdapter(), addresses=StaticAddressBook(), conntrack=NullConntrack()
        )
        return app.openapi()


def render_spec() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"
