"""Fixtures for the traffic tests: namespaces, backends, the kernlb server, a client.

Needs root / CAP_NET_ADMIN. Without it the tests skip, unless ``KERNLB_REQUIRE_NETNS=1``
(as in CI), where they fail instead.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ..conftest import require_netns
from .kernlb import Api, KernlbServer
from .topology import Topology
from .traffic import Client


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_failed_key] = True
    return report


_failed_key = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def netns_capable() -> None:
    require_netns()


@pytest.fixture
def topo(netns_capable: None, tmp_path: Path) -> Iterator[Topology]:
    """Fresh client, LB and backend namespaces with backends b1..b3 serving."""
    with Topology(workdir=tmp_path) as topology:
        yield topology


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
