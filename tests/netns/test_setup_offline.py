"""`scripts/serve.sh` once set up needs no network: run it where there is none.

A namespace with nothing but `lo` stands for a machine cut off from the package index. There,
`scripts/setup.sh` must find the Debian packages and the virtualenv already installed and leave
them alone, and `scripts/serve.sh` must reach `kernlb serve`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.net.lab import Lab, ns_exec, run

from ..conftest import skip_or_fail

pytestmark = pytest.mark.netns

REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP = REPO_ROOT / ".venv" / ".kernlb-installed"


@pytest.fixture
def offline_ns(netns_capable: None) -> Iterator[str]:
    if not STAMP.exists():
        skip_or_fail(f"{STAMP} is missing: the virtualenv was not made by scripts/setup.sh")
    lab = Lab()
    try:
        yield lab.add_netns(f"kloff{os.getpid()}")
    finally:
        lab.close()


def test_serve_sets_up_and_starts_without_network(offline_ns: str) -> None:
    stamp_before = STAMP.read_text()
    setup = run(ns_exec(offline_ns, "bash", "scripts/setup.sh"), check=False, cwd=REPO_ROOT)
    assert setup.returncode == 0, setup.stderr
    assert STAMP.read_text() == stamp_before, "setup.sh reinstalled the Python dependencies"
    serve = run(
        ns_exec(offline_ns, "bash", "scripts/serve.sh", "--help"), check=False, cwd=REPO_ROOT
    )
    assert serve.returncode == 0, serve.stderr
    assert "--no-tls" in serve.stdout
