"""Fixtures for the traffic tests: namespaces, backends, the kernlb server, a client.

Needs root / CAP_NET_ADMIN. Without it the tests skip, unless ``KERNLB_REQUIRE_NETNS=1``
(as in CI), where they fail instead.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from ..conftest import require_netns
from .kernlb import (
    FAILED,
    Api,
    KernlbServer,
    SharedServer,
    lend_server,
    lend_topology,
    module_lab_fixture,
)
from .topology import Topology
from .traffic import Client


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="session")
def netns_capable() -> None:
    require_netns()


# The topology and the kernlb server the tests of a module share.
module_topology = module_lab_fixture(Topology, "module_topology")


@pytest.fixture
def topo(
    request: pytest.FixtureRequest, module_topology: tuple[Topology, SharedServer]
) -> Iterator[Topology]:
    """Client, LB and backend namespaces with backends b1..b3 serving, as built: shared by the
    tests of a module and reset after each (helpers stopped, backends restarted, LB conntrack
    and neighbours flushed; rebuilt when a test changed addresses, routes or nftables tables).
    Mark a test ``fresh_topology`` to have new namespaces."""
    with lend_topology(*module_topology, request, server_fixture="kernlb") as topology:
        yield topology


@pytest.fixture
def client(topo: Topology) -> Client:
    assert topo.client_exec is not None
    return Client(topo.client_exec)


@pytest.fixture
def kernlb(
    request: pytest.FixtureRequest, topo: Topology, module_topology: tuple[Topology, SharedServer]
) -> Iterator[KernlbServer]:
    """kernlb serving in the LB namespace, with no farm and no virtual interface: the module's
    server, reset through ZAPI after the test (and its kernel tables checked to be a fresh
    server's). Checks at the end that foreign tables are untouched."""
    foreign_before = topo.foreign_tables()
    with lend_server(module_topology[1], topo, request) as server:
        yield server
    assert topo.foreign_tables() == foreign_before, "kernlb modified a foreign nftables table"


@pytest.fixture
def api(kernlb: KernlbServer) -> Api:
    return kernlb.api
