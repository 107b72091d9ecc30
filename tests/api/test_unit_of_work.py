"""The unit of work derives the farms to re-render from the rows a session changed.

These mutations go through `UnitOfWork.write()` with no word about which farm they touch,
the way a service written tomorrow would: each must reach the (fake) kernel in one batch.
"""

from __future__ import annotations

import datetime

from app.db import repositories as repo
from app.db.models import Backend, BackendHealth
from app.domain.ruleset import BACKEND_MASK
from app.nft.fake import FakeNftAdapter
from app.reconcile.uow import UnitOfWork

from .builders import TestClient, add_backend, create_farm


def _uow(client: TestClient) -> UnitOfWork:
    uow: UnitOfWork = client.app.state.farms.uow  # type: ignore[attr-defined]
    return uow


def slots_per_mark(nft: FakeNftAdapter) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in nft.elements("slots").values():
        mark = value & BACKEND_MASK
        counts[mark] = counts.get(mark, 0) + 1
    return counts


def two_backends(client: TestClient) -> tuple[int, int]:
    """A farm `web` with two backends of weight 1; their marks (database ids)."""
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")
    with _uow(client).read() as session:
        farm = repo.get_farm(session, "web")
        assert farm is not None
        first, second = farm.backends
        return first.id, second.id


def test_a_changed_backend_row_reaches_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    first, second = two_backends(client)
    assert slots_per_mark(nft)[first] == slots_per_mark(nft)[second]
    batches = len(nft.batches)
    with _uow(client).write() as work:
        farm = repo.get_farm(work.session, "web")
        assert farm is not None
        farm.backends[1].weight = 3
    assert len(nft.batches) == batches + 1
    slots = slots_per_mark(nft)
    assert slots[second] == 3 * slots[first]


def test_a_deleted_backend_row_leaves_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    first, second = two_backends(client)
    batches = len(nft.batches)
    with _uow(client).write() as work:
        backend = work.session.get(Backend, second)
        work.session.delete(backend)
    assert len(nft.batches) == batches + 1
    assert set(slots_per_mark(nft)) == {first}


def test_a_new_health_row_reaches_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    first, second = two_backends(client)
    batches = len(nft.batches)
    with _uow(client).write() as work:
        work.session.add(
            BackendHealth(
                backend_id=second,
                state="down",
                changed_at=datetime.datetime(2026, 1, 1),
                reason="test",
            )
        )
    assert len(nft.batches) == batches + 1
    assert set(slots_per_mark(nft)) == {first}


def test_a_stopped_farm_row_leaves_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    two_backends(client)
    with _uow(client).write() as work:
        farm = repo.get_farm(work.session, "web")
        assert farm is not None
        farm.running = False
    assert slots_per_mark(nft) == {}


def test_rows_outside_the_farms_cost_no_batch(client: TestClient, nft: FakeNftAdapter) -> None:
    two_backends(client)
    batches = len(nft.batches)
    with _uow(client).write() as work:
        repo.put_setting(work.session, "unrelated", "value")
        farm = repo.get_farm(work.session, "web")
        assert farm is not None
        farm.fg_timecheck = 7  # a farm row, but nothing the ruleset shows
    assert len(nft.batches) == batches
