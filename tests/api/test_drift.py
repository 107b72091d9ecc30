"""Drift by content through the running app: cheap when nobody else committed, repaired when
someone changed kernlb's objects without changing any count."""

from __future__ import annotations

import logging

import pytest

from app.nft.fake import FakeNftAdapter
from app.reconcile.reconciler import Reconciler

from .builders import TestClient, add_backend, create_farm
from .test_metrics import scrape, value


def reconciler_of(client: TestClient) -> Reconciler:
    reconciler: Reconciler = client.app.state.reconciler  # type: ignore[attr-defined]
    return reconciler


def test_no_foreign_commit_means_no_listing(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    add_backend(client)
    reconciler = reconciler_of(client)
    listings = 0
    real_listing = nft.listing

    def counted() -> list[dict[str, object]]:
        nonlocal listings
        listings += 1
        return real_listing()

    nft.listing = counted  # type: ignore[method-assign]
    for _ in range(3):
        assert reconciler.check_drift() == []
    assert listings == 0
    assert reconciler.stats.drift_checks == 3
    assert reconciler.stats.drift_comparisons == 0


def test_a_swapped_address_is_logged_repaired_and_counted(
    client: TestClient, nft: FakeNftAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    create_farm(client)
    add_backend(client, ip="198.18.2.1")
    reconciler = reconciler_of(client)
    assert reconciler.check_drift() == []
    mark = next(iter(nft.elements("bea4")))
    ref = {"family": "inet", "table": "kernlb", "name": "bea4"}
    tamper = [
        {"delete": {"element": {**ref, "elem": [int(mark)]}}},
        {"add": {"element": {**ref, "elem": [[int(mark), "198.18.2.9"]]}}},
    ]
    nft.tamper(tamper)
    with caplog.at_level(logging.WARNING):
        problems = reconciler.check_drift()
    assert problems == [
        f'map inet/bea4 has unexpected elements [{mark},"198.18.2.9"]',
        f'map inet/bea4 lacks elements [{mark},"198.18.2.1"]',
    ]
    assert nft.elements("bea4") == {mark: "198.18.2.1"}
    assert "nftables drift (2 difference(s))" in caplog.text and "198.18.2.9" in caplog.text
    assert reconciler.check_drift() == []  # repaired, and the repair is kernlb's own commit
    client.event_hooks["response"] = []  # /metrics answers Prometheus text, not ZAPI JSON
    samples = scrape(client)
    assert value(samples, "kernlb_reconcile_repairs_total") == 1.0
    assert value(samples, "kernlb_drift_comparisons_total") == 1.0
    assert value(samples, "kernlb_drift_checks_total") == 3.0


def test_the_applied_state_after_many_changes_is_the_database_rendered(
    client: TestClient, nft: FakeNftAdapter
) -> None:
    """Changes to existing farms are staged as the touched farms only and merged into the
    applied state on commit; farms created or deleted replace it whole.  Either way the
    applied state (what drift checks and later diffs compare) is the database rendered."""
    reconciler = reconciler_of(client)
    create_farm(client)
    create_farm(client, name="other", vport=81)
    add_backend(client, ip="198.18.2.1")
    add_backend(client, "other", ip="198.18.2.2")
    for path, body in [
        ("/farms/web/backends/0", {"weight": 5}),
        ("/farms/other", {"vport": 82}),
    ]:
        assert client.put(f"/zapi/v3.1/zapi.cgi{path}", json=body).status_code == 200
    assert client.delete("/zapi/v3.1/zapi.cgi/farms/web/backends/0").status_code == 200
    assert client.delete("/zapi/v3.1/zapi.cgi/farms/web").status_code == 200
    add_backend(client, "other", ip="198.18.2.3")
    expected = reconciler.render_all()
    assert reconciler._applied == expected  # what later diffs start from
    assert {spec.name for spec in reconciler.specs().values()} == {"other"}
    assert reconciler.differences(expected, nft.listing()) == []
