"""Shared test configuration.

Namespace tests need CAP_NET_ADMIN.  Where it is missing they skip with a reason, unless
KERNLB_REQUIRE_NETNS=1 (set by .ci/run): then a skip would hide a broken data plane, so
it fails instead.

`scripts/test.sh` runs the suite on several pytest-xdist workers, a whole module on one worker
(`--dist loadfile`): a module's shared topology, server or app is
built once, and the namespace tests, which mostly wait, overlap.  Every name a test gives to
the system (namespaces, bridges, temporary directories, sockets) includes the worker's PID.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from app.net.lab import unavailable_reason

from .netns.zygote import close_worker_zygote
from .postgres import ThrowawayPostgres
from .postgres import unavailable_reason as postgres_unavailable_reason

REQUIRE_ENV = "KERNLB_REQUIRE_NETNS"


@functools.cache
def netns_unavailable_reason() -> str | None:
    """Why namespace tests cannot run here (asked once per session), or None."""
    return unavailable_reason(f"klbprobe{os.getpid()}")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail where namespace tests are mandatory (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"namespace tests are mandatory here ({REQUIRE_ENV}=1): {reason}")
    pytest.skip(reason)


def require_netns() -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def unique_node_ids(items: list[pytest.Item]) -> None:
    """Schemathesis names its tests `test_x[GET /path]` but gives them all the node id
    `module::test_x`; xdist schedules by node id, so it ran one of them and dropped the rest.
    The node id gets the name's operation, as pytest's own parametrized tests have."""
    for item in items:
        module, _, name = item.nodeid.rpartition("::")
        if module and item.name != name and item.name.startswith(f"{name}["):
            node_id = f"{module}::{item.name}"
            try:  # pytest >= 9 keeps a structured id
                from _pytest.nodeid import coerce_node_id
            except ImportError:
                item._nodeid = node_id
            else:
                item._id = coerce_node_id(node_id)


# Under xdist, whole modules are handed out in collection order (scripts/test.sh passes
# --no-loadscope-reorder, else xdist would sort them by test count): the long ones go first, so
# that no worker starts one of them when the others are done.  First the modules marked `slow`
# (a test, or a whole module on one worker, of a minute or so), then namespaces, containers and
# the real kernel (they mostly wait), then the API and unit tests (short, CPU-bound) fill in.
WAITING = ("tests/container/", "tests/netns/", "tests/kernel/")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unique_node_ids(items)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    counts = collections.Counter(item.nodeid for item in items)
    shared = sorted(node_id for node_id, count in counts.items() if count > 1)
    if shared:
        raise pytest.UsageError(f"tests share node ids (xdist would run one of each): {shared[:5]}")
    slow_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0]
        if module in slow_modules:
            return 0
        return 1 if module.startswith(WAITING) else 2

    items.sort(key=rank)  # stable: modules and their tests keep their order within a rank


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The worker's zygote (tests/netns/zygote.py), if a test started one, is stopped by PID
    with any server it still runs (the fixtures have stopped theirs by now)."""
    close_worker_zygote()


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """One throw-away PostgreSQL server for the session (Unix socket only), removed at the end.

    Skips with the reason when PostgreSQL or psycopg is missing, except under
    KERNLB_REQUIRE_NETNS=1 (CI installs both): there it fails."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        skip_or_fail(f"PostgreSQL: {reason}")
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()
