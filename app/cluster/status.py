"""`GET /system/cluster`: the nodes sharing the database, as Zevenet's cluster API shows them
(`nodes[]` with `name`, `ip`, `node` local/remote, `role`, `status`, `message`) plus what a
kernlb cluster adds: the revision each node applied, its lag, heartbeat age, health leader."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.cluster.node import cluster_nodes, health_leader, utcnow
from app.cluster.runtime import ClusterRuntime
from app.reconcile.revision import current_revision


@dataclass(frozen=True)
class NodeView:
    name: str
    ip: str
    local: bool
    role: str
    status: str
    message: str
    revision: int | None
    lag: int | None
    seen_seconds_ago: float | None
    health_leader: bool
    schema_revision: str
    version: str

    def zapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ip": self.ip,
            "node": "local" if self.local else "remote",
            "role": self.role,
            "status": self.status,
            "message": self.message,
            "revision": self.revision,
            "lag": self.lag,
            "seen_seconds_ago": self.seen_seconds_ago,
            "health_leader": "true" if self.health_leader else "false",
            "schema_revision": self.schema_revision,
            "version": self.version,
        }


def _role(vrrp_state: str) -> str:
    return vrrp_state.lower() if vrrp_state else "none"


def cluster_view(cluster: ClusterRuntime) -> dict[str, Any]:
    node = cluster.node
    follower = cluster.uow.follower
    stale_after = 3 * node.interval + 2.0
    params: dict[str, Any] = {
        "interface": cluster.settings.cluster_interface,
        "check_interval": cluster.settings.cluster_advert,
        "failback": "enabled",  # keepalived preempts: the higher priority takes the VIPs back
        "node_name": node.name,
        "vrrp": "true" if cluster.vrrp else "false",
    }
    try:
        with cluster.uow.session_factory() as session:
            latest = current_revision(session)
            rows = cluster_nodes(session)
            leader = health_leader(session)
            own_schema = node.schema_revision()
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        applied = follower.applied if follower.applied >= 0 else None
        own = NodeView(
            name=node.name,
            ip=cluster.settings.cluster_address,
            local=True,
            role=_role(cluster.vrrp_state()),
            status="unreachable database",
            message=(
                f"The database cannot be reached ({first}). The kernel keeps revision "
                f"{applied if applied is not None else 'unknown'}; changes made since are not "
                "applied here, and writes get 503."
            ),
            revision=applied,
            lag=None,
            seen_seconds_ago=None,
            health_leader=False,
            schema_revision="",
            version="",
        )
        params |= {
            "revision": None,
            "database": "unreachable",
            "health_leader": None,
            "nodes": [own.zapi()],
        }
        return {"description": "Show the cluster configuration", "params": params}
    now = utcnow()
    views = []
    for row in rows:
        local = row.name == node.name
        revision = (follower.applied if follower.applied >= 0 else None) if local else row.revision
        seen = (now - row.seen_at).total_seconds() if row.seen_at else None
        lag = None if revision is None else max(0, latest - revision)
        alive = local or (seen is not None and seen <= stale_after)
        if not alive:
            status, message = (
                "unreachable",
                f"No heartbeat for {seen:.0f} s: the node or its database link is down; it "
                f"last applied revision {revision}.",
            )
        elif lag is None:
            status, message = "syncing", "The node has not applied the configuration yet."
        elif lag:
            status, message = (
                "lagging",
                f"Applied revision {revision}; {lag} revision(s) behind the database.",
            )
        elif row.schema_revision and row.schema_revision != own_schema:
            status, message = (
                "schema mismatch",
                f"Runs schema revision {row.schema_revision}, this node {own_schema}.",
            )
        else:
            status, message = "ok", "Node online and in sync"
        views.append(
            NodeView(
                name=row.name,
                ip=row.address,
                local=local,
                role=_role(cluster.vrrp_state() if local else row.vrrp_state),
                status=status,
                message=message,
                revision=revision,
                lag=lag,
                seen_seconds_ago=round(seen, 1) if seen is not None and not local else 0.0,
                health_leader=leader == row.name,
                schema_revision=row.schema_revision,
                version=row.version,
            )
        )
    params |= {
        "revision": latest,
        "database": "ok",
        "health_leader": leader,
        "nodes": [v.zapi() for v in views],
    }
    return {"description": "Show the cluster configuration", "params": params}


def seconds_since(moment: datetime.datetime | None) -> float | None:
    return None if moment is None else (utcnow() - moment).total_seconds()
