"""Prometheus metrics (`GET /metrics`), one registry per application.

What is measured where:
- API requests: `RequestMetricsMiddleware` counts and times every request, labelled with the
  route *template* (`/farms/{name}`), never the raw path, so label values stay bounded.
- Farms, backends and the reconciler: `StateCollector` reads them when Prometheus scrapes
  (connection counts from one conntrack dump, statuses from the database, reconcile counters
  from `Reconciler.stats`).
- Health checks: `Metrics.timed_prober` wraps the checker's prober and times every probe
  (`kernlb_health_check_duration_seconds{check, result}`); code that runs probes some other
  way can call `Metrics.observe_health_check` itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, StateSetMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.health.checks import Check, HttpCheck, TcpCheck
from app.health.probes import Prober, ProbeResult
from app.reconcile.reconciler import ReconcileStats
from app.schemas.views import FarmStats

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "<unmatched>"
FARM_STATES = ("up", "down", "critical", "problem", "maintenance", "needed restart")
BACKEND_STATES = ("up", "down", "maintenance", "undefined")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHECK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The application's registry and the metrics that code updates as things happen."""

    def __init__(self) -> None:
        # `*_created` series double the output for nothing a dashboard uses (process-wide).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kernlb_api_requests",
            "API requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "kernlb_api_request_duration_seconds",
            "Time to answer an API request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.health_check_seconds = Histogram(
            "kernlb_health_check_duration_seconds",
            "Duration of one health check probe, by kind of check (tcp, http, https or the "
            "plugin's name) and result (pass, fail, timeout, error).",
            ["check", "result"],
            buckets=CHECK_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "kernlb_auth_failures",
            "Requests with a missing or wrong ZAPI key (answered 401).",
            registry=self.registry,
        )
        self.auth_throttled = Counter(
            "kernlb_auth_throttled",
            "Requests refused with 429 because their source failed authentication too often.",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def observe_health_check(self, *, check: str, result: str, seconds: float) -> None:
        """Record one probe: `result` is pass, fail, timeout or error."""
        self.health_check_seconds.labels(check, result).observe(seconds)

    def timed_prober(self, prober: Prober) -> Prober:
        """The same prober, timing each probe (a probe cancelled by its timeout: "timeout")."""

        async def probe(check: Check, host: str, port: int | None) -> ProbeResult:
            started = time.perf_counter()
            result = "error"
            try:
                outcome = await prober(check, host, port)
                result = "pass" if outcome.ok else "fail"
                return outcome
            except asyncio.CancelledError:
                result = "timeout"
                raise
            finally:
                self.observe_health_check(
                    check=check_kind(check), result=result, seconds=time.perf_counter() - started
                )

        return probe

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Farm, backend and reconciler state, read at scrape time."""

    def __init__(
        self,
        *,
        farms: Callable[[], list[FarmStats]],
        reconcile: Callable[[], ReconcileStats],
    ) -> None:
        self.farms = farms
        self.reconcile = reconcile

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily: registering must not read conntrack or the database

    def collect(self) -> Iterable[Metric]:
        yield from self._reconcile_metrics(self.reconcile())
        try:
            farms = self.farms()
        except Exception:  # a scrape must not fail because conntrack could not be read
            log.exception("collecting farm metrics failed")
            farms = None
        ok = GaugeMetricFamily(
            "kernlb_farm_stats_up", "1 if farm and connection figures could be read."
        )
        ok.add_metric([], 0.0 if farms is None else 1.0)
        yield ok
        if farms is not None:
            yield from self._farm_metrics(farms)

    @staticmethod
    def _reconcile_metrics(stats: ReconcileStats) -> Iterable[Metric]:
        counters = (
            ("kernlb_reconcile_batches", "nftables batches applied.", stats.batches),
            ("kernlb_reconcile_failures", "nftables batches the kernel refused.", stats.failures),
            (
                "kernlb_reconcile_full_syncs",
                "Whole-state syncs (start-up, repairs).",
                stats.full_syncs,
            ),
            (
                "kernlb_reconcile_repairs",
                "Drift repairs (someone changed the ruleset).",
                stats.repairs,
            ),
            (
                "kernlb_drift_checks",
                "Periodic drift checks (most cost one ruleset-generation request).",
                stats.drift_checks,
            ),
            (
                "kernlb_drift_comparisons",
                "Drift checks that compared the ruleset object by object (foreign commit seen).",
                stats.drift_comparisons,
            ),
        )
        for name, text, value in counters:
            family = CounterMetricFamily(name, text)
            family.add_metric([], float(value))
            yield family
        duration = GaugeMetricFamily(
            "kernlb_reconcile_last_duration_seconds", "Duration of the last applied batch."
        )
        duration.add_metric([], float(stats.last_duration))
        yield duration
        success = GaugeMetricFamily(
            "kernlb_reconcile_last_success_timestamp_seconds",
            "Unix time of the last batch the kernel accepted (0: none yet).",
        )
        success.add_metric([], float(stats.last_success or 0.0))
        yield success

    @staticmethod
    def _farm_metrics(farms: list[FarmStats]) -> Iterable[Metric]:
        farm_est = GaugeMetricFamily(
            "kernlb_farm_established_connections",
            "Established connections of a farm (its backends that are up; 0 when stopped).",
            labels=["farm"],
        )
        farm_pending = GaugeMetricFamily(
            "kernlb_farm_pending_connections",
            "Connections of a farm still in a SYN state.",
            labels=["farm"],
        )
        farm_state = StateSetMetricFamily(
            "kernlb_farm_status", "A farm's ZAPI status.", labels=["farm"]
        )
        be_est = GaugeMetricFamily(
            "kernlb_backend_established_connections",
            "Established connections of a backend (conntrack, by the backend's mark).",
            labels=["farm", "backend"],
        )
        be_pending = GaugeMetricFamily(
            "kernlb_backend_pending_connections",
            "Connections of a backend still in a SYN state.",
            labels=["farm", "backend"],
        )
        be_up = GaugeMetricFamily(
            "kernlb_backend_up",
            "1 if the backend takes new connections (status up), else 0.",
            labels=["farm", "backend"],
        )
        be_state = StateSetMetricFamily(
            "kernlb_backend_status",
            "A backend's ZAPI status (down = failed its health checks).",
            labels=["farm", "backend"],
        )
        for farm in farms:
            farm_est.add_metric([farm.name], float(farm.established))
            farm_pending.add_metric([farm.name], float(farm.pending))
            farm_state.add_metric([farm.name], _one_hot(FARM_STATES, farm.status))
            for backend in farm.backends:
                labels = [farm.name, str(backend.id)]
                be_est.add_metric(labels, float(backend.established))
                be_pending.add_metric(labels, float(backend.pending))
                be_up.add_metric(labels, 1.0 if backend.status == "up" else 0.0)
                be_state.add_metric(labels, _one_hot(BACKEND_STATES, backend.status))
        yield from (farm_est, farm_pending, farm_state, be_est, be_pending, be_up, be_state)


def check_kind(check: Check) -> str:
    if isinstance(check, TcpCheck):
        return "tcp"
    if isinstance(check, HttpCheck):
        return "https" if check.tls else "http"
    return check.name


def _one_hot(states: tuple[str, ...], current: str) -> dict[str, bool]:
    values = {state: state == current for state in states}
    if current not in values:
        values[current] = True
    return values


class RequestMetricsMiddleware:
    """Counts and times every HTTP request (outermost, so refused and unknown ones count).

    `route_label` turns a route's template into the label; `find_template` finds the template
    of a path that was answered before routing (OPTIONS, 401), or None."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        route_label: Callable[[str], str],
        find_template: Callable[[str], str | None],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_label = route_label
        self.find_template = find_template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                method=str(scope["method"]),
                route=self._route(scope),
                status=status,
                seconds=time.perf_counter() - started,
            )

    def _route(self, scope: Scope) -> str:
        route: Any = scope.get("route")
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            template = self.find_template(str(scope["path"]))
        return self.route_label(template) if template is not None else UNMATCHED


def template_finder(paths: Callable[[], Iterable[str]]) -> Callable[[str], str | None]:
    """Match a path against route templates (read once, on first use)."""
    compiled: list[tuple[re.Pattern[str], str]] = []

    def find(path: str) -> str | None:
        if not compiled:
            compiled.extend((compile_path(t)[0], t) for t in paths())
        return next((template for regex, template in compiled if regex.match(path)), None)

    return find


class IpdsCollector(Collector):
    """Packets and bytes each farm's IPDS lists and DoS rules dropped (kernel counters)."""

    def __init__(self, counters: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.counters = counters

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        try:
            farms = self.counters()
        except Exception:  # a scrape must not fail because the counters could not be read
            log.exception("collecting IPDS counters failed")
            return
        packets = CounterMetricFamily(
            "kernlb_ipds_dropped_packets",
            "Packets an IPDS list or DoS rule dropped before scheduling.",
            labels=["farm", "kind", "name", "rule"],
        )
        nbytes = CounterMetricFamily(
            "kernlb_ipds_dropped_bytes",
            "Bytes an IPDS list or DoS rule dropped before scheduling.",
            labels=["farm", "kind", "name", "rule"],
        )
        for farm, body in sorted(farms.items()):
            for item in body["blacklists"]:
                labels = [farm, "list", item["name"], item["policy"]]
                packets.add_metric(labels, float(item["packets"]))
                nbytes.add_metric(labels, float(item["bytes"]))
            for item in body["dos"]:
                labels = [farm, "dos", item["name"], item["rule"]]
                packets.add_metric(labels, float(item["packets"]))
                nbytes.add_metric(labels, float(item["bytes"]))
        yield packets
        yield nbytes
