"""Shared test configuration.

Namespace tests need CAP_NET_ADMIN.  Where it is missing they skip with a reason, unless
KERNLB_REQUIRE_NETNS=1 (set by .ci/run): then a skip would hide a broken data plane, so
it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest


def netns_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install iproute2 nftables)"
    probe = f"klbprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def require_netns() -> None:
    reason = netns_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("KERNLB_REQUIRE_NETNS") == "1":
        pytest.fail(f"namespace tests are mandatory here (KERNLB_REQUIRE_NETNS=1): {reason}")
    pytest.skip(reason)
