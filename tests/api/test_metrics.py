"""GET /metrics: Prometheus text, parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import documented_paths
from app.health.checks import CommandCheck, HttpCheck, TcpCheck
from app.health.probes import ProbeResult
from app.metrics import Metrics
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import (
    KEY,
    Serve,
    TestClient,
    add_backend,
    create_farm,
    farm_action,
    set_maintenance,
    url,
)
from .fakes import FakeCounter

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
UNAUTHORIZED = {"message": "Authorization required"}


def scrape(client: TestClient, *, key: str | None = KEY) -> Samples:
    headers = {"ZAPI_KEY": key} if key else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def raw(client: TestClient) -> Iterator[TestClient]:
    """The same client without the hook that wants JSON on every answer: /metrics is text."""
    client.event_hooks["response"] = []
    yield client


# -- access --------------------------------------------------------------------------------


def test_metrics_need_the_key(anonymous: TestClient) -> None:
    response = anonymous.get("/metrics")
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert response.headers["content-type"] == "application/json"
    response = anonymous.get("/metrics", headers={"ZAPI_KEY": "wrong"})
    assert response.status_code == 401


def test_metrics_can_be_public(serve: Serve, settings: Settings) -> None:
    public = settings.model_copy(update={"metrics_public": True})
    with serve(nft=FakeNftAdapter(), settings=public, key=None) as client:
        client.event_hooks["response"] = []
        assert value(scrape(client, key=None), "kernlb_farm_stats_up") == 1.0
        # Only /metrics: the API still wants the key.
        assert client.get(url("/farms")).status_code == 401


def test_options_on_metrics_needs_no_key(anonymous: TestClient) -> None:
    response = anonymous.options("/metrics")
    assert (response.status_code, response.json()) == (200, {})


# -- farms, backends, reconciler ---------------------------------------------------------------


def test_connection_counts_and_statuses(raw: TestClient, counter: FakeCounter) -> None:
    create_farm(raw)
    create_farm(raw, name="idle", vport=81)
    up = add_backend(raw)
    draining = add_backend(raw, ip="192.0.2.2")
    assert set_maintenance(raw, "web", draining).status_code == 200
    add_backend(raw, "idle")
    farm_action(raw, "idle", "stop")
    counter.set(1, established=5, pending=2)
    counter.set(2, established=3)
    samples = scrape(raw)

    assert named(samples, "kernlb_backend_established_connections") == {
        frozenset({("farm", "web"), ("backend", str(up))}): 5.0,
        frozenset({("farm", "web"), ("backend", str(draining))}): 3.0,
        frozenset({("farm", "idle"), ("backend", "0")}): 0.0,
    }
    assert value(samples, "kernlb_backend_pending_connections", farm="web", backend="0") == 2.0
    # The farm counts its backends that are up (reference §8.1); a stopped farm counts 0.
    assert value(samples, "kernlb_farm_established_connections", farm="web") == 5.0
    assert value(samples, "kernlb_farm_pending_connections", farm="web") == 2.0
    assert value(samples, "kernlb_farm_established_connections", farm="idle") == 0.0
    assert value(samples, "kernlb_backend_up", farm="web", backend="0") == 1.0
    assert value(samples, "kernlb_backend_up", farm="web", backend="1") == 0.0
    states = named(samples, "kernlb_backend_status")
    current = {
        (dict(labels)["backend"], dict(labels)["kernlb_backend_status"])
        for labels, v in states.items()
        if dict(labels)["farm"] == "web" and v == 1.0
    }
    assert current == {("0", "up"), ("1", "maintenance")}
    farm_states = {
        dict(labels)["farm"]: dict(labels)["kernlb_farm_status"]
        for labels, v in named(samples, "kernlb_farm_status").items()
        if v == 1.0
    }
    assert farm_states == {"web": "maintenance", "idle": "down"}


def test_a_conntrack_failure_does_not_fail_the_scrape(
    raw: TestClient, counter: FakeCounter
) -> None:
    create_farm(raw)
    add_backend(raw)
    counter.fail = True
    samples = scrape(raw)
    assert value(samples, "kernlb_farm_stats_up") == 0.0
    assert named(samples, "kernlb_backend_established_connections") == {}
    assert value(samples, "kernlb_reconcile_batches_total") is not None


def test_reconcile_figures(raw: TestClient, nft: FakeNftAdapter) -> None:
    before = scrape(raw)
    assert value(before, "kernlb_reconcile_full_syncs_total") == 1.0  # start-up
    batches = value(before, "kernlb_reconcile_batches_total")
    assert batches is not None and batches >= 1
    last_success = value(before, "kernlb_reconcile_last_success_timestamp_seconds")
    assert last_success is not None and last_success > 1.7e9
    assert value(before, "kernlb_reconcile_failures_total") == 0.0

    create_farm(raw)
    nft.fail_next()
    assert raw.post(url("/farms/web/backends"), json={"ip": "192.0.2.1"}).status_code == 400
    after = scrape(raw)
    assert value(after, "kernlb_reconcile_batches_total") == batches + 1
    assert value(after, "kernlb_reconcile_failures_total") == 1.0
    duration = value(after, "kernlb_reconcile_last_duration_seconds")
    assert duration is not None and duration >= 0


# -- API requests ----------------------------------------------------------------------------


def test_requests_are_labelled_with_the_route_template(raw: TestClient) -> None:
    create_farm(raw)
    for name in ("web", "nope1", "nope2"):
        raw.get(url(f"/farms/{name}"))
    raw.get(url("/farms"), headers={"ZAPI_KEY": "wrong"})
    raw.get(url("/no/such/route"))
    raw.get(url("/no/other/route"))
    samples = scrape(raw)
    requests = {
        (dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): v
        for labels, v in named(samples, "kernlb_api_requests_total").items()
    }
    assert requests[("GET", "/farms/{name}", "200")] == 1.0
    assert requests[("GET", "/farms/{name}", "404")] == 2.0
    assert requests[("POST", "/farms", "201")] == 1.0
    assert requests[("GET", "/farms", "401")] == 1.0  # refused before routing, still labelled
    assert requests[("GET", "<unmatched>", "404")] == 2.0
    assert not any("nope" in route for _, route, _ in requests)  # never a raw path
    count = value(
        samples, "kernlb_api_request_duration_seconds_count", method="GET", route="/farms/{name}"
    )
    assert count == 3.0


def test_the_route_templates_are_the_documented_paths(raw: TestClient) -> None:
    """The labels come from the routes, not from building the OpenAPI document: the same
    paths, in the same order (the first template that matches a path labels it)."""
    app = raw.app
    assert isinstance(app, FastAPI)
    assert documented_paths(app) == list(app.openapi()["paths"])


# -- health checks -------------------------------------------------------------------------


def test_timed_prober_records_each_probe() -> None:
    metrics = Metrics()

    async def prober(check: object, host: str, port: int | None) -> ProbeResult:
        if host == "hang":
            await asyncio.sleep(3600)
        return ProbeResult(host == "good", "")

    async def run() -> None:
        timed = metrics.timed_prober(prober)
        assert (await timed(TcpCheck(port="PORT"), "good", 80)).ok
        assert not (await timed(HttpCheck(tls=True), "bad", 443)).ok
        plugin = CommandCheck(Path("/usr/lib/nagios/plugins/check_ping"), ("-H", "HOST"))
        task = asyncio.ensure_future(timed(plugin, "hang", None))
        await asyncio.sleep(0)
        task.cancel()  # what the checker does when a probe outlives its timeout
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    samples = parse(metrics.render().decode())
    counts = {
        (dict(labels)["check"], dict(labels)["result"]): v
        for labels, v in named(samples, "kernlb_health_check_duration_seconds_count").items()
    }
    assert counts == {("tcp", "pass"): 1.0, ("https", "fail"): 1.0, ("check_ping", "timeout"): 1.0}
