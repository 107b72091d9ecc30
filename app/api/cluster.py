"""Cluster endpoints (`/system/cluster`, after Zevenet's cluster API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api.docs import documented
from app.api.http import ZapiResponse
from app.cluster.status import cluster_view
from app.errors import NotFound

router = APIRouter(tags=["system"], default_response_class=ZapiResponse)


class ClusterNodeItem(BaseModel):
    name: str
    ip: str
    node: str  # "local" | "remote"
    role: str  # VRRP role: master, backup, fault, stop, unknown, none
    status: str  # ok, lagging, syncing, unreachable, unreachable database, schema mismatch
    message: str
    revision: int | None  # configuration revision this node's kernel reflects
    lag: int | None  # revisions behind the database (null: unknown)
    seen_seconds_ago: float | None
    health_leader: str  # "true" | "false"
    schema_revision: str
    version: str


class ClusterParams(BaseModel):
    interface: str
    check_interval: float
    failback: str
    node_name: str
    vrrp: str
    revision: int | None
    database: str  # "ok" | "unreachable"
    health_leader: str | None
    nodes: list[ClusterNodeItem]


class ClusterResponse(BaseModel):
    description: str
    params: ClusterParams


@router.get(
    "/system/cluster",
    operation_id="getSystemCluster",
    **documented(
        ClusterResponse,
        errors=(404,),
        texts={404: "This node is not part of a cluster (the database is not PostgreSQL)"},
    ),
)
def system_cluster(request: Request) -> dict[str, Any]:
    """The cluster: nodes, their VRRP role, the revision each applied, lag, health leader."""
    cluster = request.app.state.cluster
    if cluster is None:
        raise NotFound(
            "This node is not in a cluster: it keeps its state in SQLite "
            "(a cluster shares a PostgreSQL database, see docs/cluster.md).",
            description="Show the cluster configuration",
        )
    return cluster_view(cluster)
