"""Cluster metrics for /metrics, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.cluster.runtime import ClusterRuntime

ROLES = ("master", "backup", "fault", "stop", "unknown")


class ClusterCollector:
    def __init__(self, cluster: ClusterRuntime) -> None:
        self.cluster = cluster

    def collect(self) -> Iterable[Metric]:
        node = self.cluster.node
        follower = self.cluster.uow.follower
        labels = ["node"]
        name = [node.name]

        def gauge(metric: str, text: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(metric, text, labels=labels)
            family.add_metric(name, value)
            return family

        def counter(metric: str, text: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(metric, text, labels=labels)
            family.add_metric(name, value)
            return family

        yield gauge(
            "kernlb_cluster_database_up",
            "1 while this node reaches the shared database.",
            1.0 if node.status.db_ok else 0.0,
        )
        yield gauge(
            "kernlb_cluster_revision_applied",
            "Configuration revision this node's kernel reflects (-1: unknown).",
            follower.applied,
        )
        yield gauge(
            "kernlb_cluster_revision_latest",
            "Newest configuration revision this node knows of.",
            follower.latest_seen,
        )
        lag = follower.lag()
        yield gauge(
            "kernlb_cluster_lag_revisions",
            "Revisions this node is behind (NaN: unknown, e.g. database unreachable).",
            float("nan") if lag is None or not node.status.db_ok else lag,
        )
        yield gauge(
            "kernlb_cluster_health_leader",
            "1 while this node runs the health checks for the cluster.",
            1.0 if node.status.health_leader else 0.0,
        )
        role = self.cluster.vrrp_state().lower()
        roles = GaugeMetricFamily(
            "kernlb_cluster_vrrp_role",
            "This node's VRRP role as reported by keepalived's notify hook (1 = current).",
            labels=["node", "role"],
        )
        for each in ROLES:
            roles.add_metric([node.name, each], 1.0 if role == each else 0.0)
        yield roles
        yield counter(
            "kernlb_cluster_notifications",
            "Configuration change notifications received (LISTEN/NOTIFY).",
            node.status.notifications,
        )
        syncs = CounterMetricFamily(
            "kernlb_cluster_syncs",
            "Catch-ups applied from the database, by kind (incremental: the farms a "
            "notification named; full: the whole state).",
            labels=["node", "kind"],
        )
        syncs.add_metric([node.name, "incremental"], follower.stats.incremental_syncs)
        syncs.add_metric([node.name, "full"], follower.stats.full_syncs)
        yield syncs
        yield counter(
            "kernlb_cluster_keepalived_reloads",
            "keepalived reloads after the set of VIPs changed.",
            self.cluster.keepalived_reloads,
        )
        yield counter(
            "kernlb_cluster_health_leader_changes",
            "Times this node took the health-check leadership.",
            node.status.leader_changes,
        )
