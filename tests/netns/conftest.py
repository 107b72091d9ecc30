"""Fixtures for the traffic tests: namespaces, backends, the kernlb server, a client.

Needs root / CAP_NET_ADMIN. Without it the tests skip, unless ``KERNLB_REQUIRE_NETNS=1``
(as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .kernlb import Api, KernlbServer
from .topology import Topology, sh
from .traffic import Client

REQUIRE_ENV = "KERNLB_REQUIRE_NETNS"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_failed_key] = True
    return report


_failed_key = pytest.StashKey[bool]()


def _netns_problem() -> str | None:
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"klb{os.getpid()}probe"
    try:
        sh(["ip", "netns", "add", probe], timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"cannot create a network namespace (need root/CAP_NET_ADMIN): {exc}"
    try:
        sh(["ip", "-n", probe, "link", "set", "lo", "up"], timeout=10)
        sh(["ip", "netns", "exec", probe, "nft", "list", "ruleset"], timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"cannot use nftables inside a network namespace: {exc}"
    finally:
        sh(["ip", "netns", "del", probe], check=False, timeout=10)
    return None


@pytest.fixture(scope="session")
def netns_capable() -> None:
    problem = _netns_problem()
    if problem is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but network namespaces are unusable: {problem}")
    pytest.skip(f"network namespaces unusable: {problem}")


@pytest.fixture
def topo(netns_capable: None, tmp_path: Path) -> Iterator[Topology]:
    """Fresh client, LB and backend namespaces with backends b1..b3 serving."""
    topology = Topology(workdir=tmp_path)
    topology.build()
    try:
        yield topology
    finally:
        topology.destroy()


@pytest.fixture
def client(topo: Topology) -> Client:
    assert topo.client_exec is not None
    return Client(topo.client_exec)


@pytest.fixture
def kernlb(
    request: pytest.FixtureRequest, topo: Topology, tmp_path: Path
) -> Iterator[KernlbServer]:
    """kernlb serving in the LB namespace; checks at the end that foreign tables are untouched."""
    foreign_before = topo.foreign_tables()
    server = KernlbServer(topo.lb, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.close()
        if request.node.stash.get(_failed_key, False):
            print(f"\n----- kernlb log ({server.log_path}) -----\n{server.log_tail(300)}")
    assert topo.foreign_tables() == foreign_before, "kernlb modified a foreign nftables table"


@pytest.fixture
def api(kernlb: KernlbServer) -> Api:
    return kernlb.api
