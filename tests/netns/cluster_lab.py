"""The cluster lab (app/net/cluster_lab.py, shared with `kernlb demo --cluster`) with the tests'
kernlb server: `python -m app serve` in cluster mode, driven through the tests' ZAPI client."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

from app.net.cluster_lab import BACKENDS, CLIENT_SOURCES, GATEWAY, VIP
from app.net.cluster_lab import ClusterLab as _ClusterLab
from app.net.cluster_lab import LbNode as _LbNode

from .kernlb import API_KEY, API_PORT, KernlbServer

__all__ = ["BACKENDS", "CLIENT_SOURCES", "GATEWAY", "VIP", "ClusterLab", "LbNode", "new_lab"]

_counter = itertools.count(1)


class ClusterServer(KernlbServer):
    """`kernlb serve` in cluster mode: the shared database and this node's VRRP settings
    (``env``, on top of the worker's environment)."""

    def __init__(self, lb_ns: str, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(lb_ns, workdir, resync_interval=30, env=env)

    def argv(self) -> list[str]:
        return [
            *(sys.executable, "-m", "app", "serve", "--no-tls", "--host", "127.0.0.1"),
            *("--port", str(API_PORT), "--key", API_KEY, "--state-dir", str(self.workdir)),
        ]


ClusterLab = _ClusterLab[ClusterServer]
LbNode = _LbNode[ClusterServer]


def new_lab(workdir: Path, db_url: str) -> ClusterLab:
    return ClusterLab(
        workdir, db_url, prefix=f"kc{os.getpid()}x{next(_counter)}", server_factory=ClusterServer
    )
