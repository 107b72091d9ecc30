"""A throw-away network namespace for kernel-level tests (no traffic, just nftables)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.net.lab import Lab, ns_exec, run

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def scratch_namespace() -> Iterator[str]:
    lab = Lab()
    try:
        yield lab.add_netns(f"klbk{os.getpid() % 100000}{uuid.uuid4().hex[:4]}")
    finally:
        lab.close()


def run_in(ns: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(ns_exec(ns, *argv), stdin=stdin, check=False, timeout=120, cwd=REPO)


def python_in(ns: str, code: str) -> subprocess.CompletedProcess[str]:
    return run_in(ns, sys.executable, "-c", code)


def scenario_output(ns: str, code: str) -> str:
    """Run a Python scenario in the namespace; it must exit 0 and print OK last (its own
    asserts passed to the end).  Its output, for the test's further checks."""
    result = python_in(ns, code)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("OK"), result.stdout + result.stderr
    return result.stdout
