#!/usr/bin/env python3
"""What a large list costs in the API before the kernel: `PUT /ipds/blacklists/NAME {"sources"}`.

Not a test: it prints figures.  In-process (Starlette's test client), a throw-away SQLite
database, a kernel adapter that accepts every batch without doing anything (the kernel's part
is bench/ipds_lists.py's), so what is timed is the request: JSON, validation of every source,
the database rows, rendering and diffing the list.

    .venv/bin/python bench/ipds_api_put.py --sources 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.testclient import TestClient

from app.db.session import migrate
from app.main import create_app
from app.net.addresses import StaticAddressBook
from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter
from app.settings import Settings
from tests.api.fakes import FakeCounter, FixedSystemProbe, host_links

KEY = "benchKey0123456789"


class NoKernel(FakeNftAdapter):
    def apply(self, commands: list[dict[str, Any]]) -> None:
        """Accepted, not modelled: the kernel's part is measured elsewhere."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kbput"))
    url = f"sqlite:///{work}/k.db"
    migrate(url)
    settings = Settings(
        db=url,
        state_dir=work,
        zapi_key=KEY,
        resync_interval=0,
        load_interval=0,
        body_limit=512 << 20,
    )
    app = create_app(
        settings,
        nft=NoKernel(),
        addresses=StaticAddressBook({}),
        conntrack=NullConntrack(),
        counter=FakeCounter(),
        links=host_links(),
        system_probe=FixedSystemProbe(),
    )
    n = args.sources
    sources = [
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        if i % 2
        else f"{11 + (i >> 16)}.{i >> 8 & 255}.{i & 255}.0/24"
        for i in range(n)
    ]
    base = "/zapi/v3.1/zapi.cgi"
    with TestClient(app) as client:
        client.headers.update({"ZAPI_KEY": KEY})
        created = client.post(f"{base}/ipds/blacklists", json={"name": "big", "policy": "deny"})
        assert created.status_code == 201, created.text
        started = time.perf_counter()
        response = client.put(f"{base}/ipds/blacklists/big", json={"sources": sources})
        took = time.perf_counter() - started
        assert response.status_code == 200, response.text
    print(f"{n:,} sources: PUT answered in {took:.2f} s (kernel excluded)")


if __name__ == "__main__":
    main()
