"""Queries and the mapping from rows to the domain's desired state.  Never commits."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Engine, RowMapping, Select, bindparam, exists, or_, select
from sqlalchemy.orm import Session, joinedload

from app.db.models import Backend, BackendHealth, Farm, IpdsFarmDos, IpdsFarmList, Setting
from app.domain.model import BackendSpec, FarmSpec
from app.domain.rules import parse_vport


@functools.cache
def _farm_by_name() -> Select[Any]:
    # One joined SELECT for the farm, its backends and their health (the relationships'
    # default selectin loading costs three statements: twice the CPU per request), built
    # once (building it costs as much as running it).
    return (
        select(Farm)
        .where(Farm.name == bindparam("name"))
        .options(joinedload(Farm.backends).joinedload(Backend.health))
    )


def get_farm(session: Session, name: str) -> Farm | None:
    farm: Farm | None = session.scalars(_farm_by_name(), {"name": name}).unique().one_or_none()
    return farm


def list_farms(session: Session) -> list[Farm]:
    return list(session.scalars(select(Farm).order_by(Farm.name)))


def farms_on_vip(session: Session, vip: str, *, except_id: int | None = None) -> list[Farm]:
    """Farms on one VIP (VIPs are stored canonical, so equality is address equality)."""
    query = select(Farm).where(Farm.vip == vip)
    if except_id is not None:
        query = query.where(Farm.id != except_id)
    return list(session.scalars(query))


def stateless_farms(session: Session, *, except_id: int | None = None) -> list[Farm]:
    query = select(Farm).where(Farm.nattype == "stateless_dnat")
    if except_id is not None:
        query = query.where(Farm.id != except_id)
    return list(session.scalars(query))


def get_backend(farm: Farm, zapi_id: int) -> Backend | None:
    return next((b for b in farm.backends if b.zapi_id == zapi_id), None)


def get_setting(session: Session, key: str) -> str | None:
    row = session.get(Setting, key)
    return row.value if row else None


# A setting read on every request (the ZAPI key's hash): one prebuilt SELECT on a plain
# connection, no ORM session (five times the CPU of this).
_SETTING_VALUE = select(Setting.value).where(Setting.key == bindparam("key"))


def read_setting(engine: Engine, key: str) -> str | None:
    """A setting, read on a connection of its own (no session)."""
    with engine.connect() as connection:
        value: str | None = connection.execute(_SETTING_VALUE, {"key": key}).scalar()
        return value


def put_setting(session: Session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def backend_spec(backend: Backend) -> BackendSpec:
    health = backend.health.state if backend.health is not None else "up"
    return _backend_spec_of(_Attributes(backend), health)


def farm_spec(farm: Farm) -> FarmSpec:
    backends = sorted(farm.backends, key=lambda b: b.zapi_id)
    return _farm_spec_of(_Attributes(farm), (backend_spec(b) for b in backends))


class _Attributes:
    """An ORM object's columns read by name, as a Core row's are (`columns["vip"]`)."""

    __slots__ = ("_row",)

    def __init__(self, row: Farm | Backend) -> None:
        self._row = row

    def __getitem__(self, name: str) -> Any:
        return getattr(self._row, name)


# A row's columns by name: a Core row's mapping, a dict of one (FarmRows), or an ORM object's.
Columns = RowMapping | Mapping[str, Any] | _Attributes


def _backend_spec_of(columns: Columns, health: str) -> BackendSpec:
    """A backend's spec from its table columns (however they were read)."""
    return BackendSpec(
        mark=columns["id"],
        zapi_id=columns["zapi_id"],
        ip=columns["ip"],
        port=columns["port"],
        weight=columns["weight"],
        priority=columns["priority"],
        max_conns=columns["max_conns"],
        maintenance=columns["maintenance"],
        health=health,
        source_addr=columns["source_addr"],
    )


def _farm_spec_of(columns: Columns, backends: Iterable[BackendSpec]) -> FarmSpec:
    """A farm's spec from its table columns (however they were read)."""
    interface = columns["interface"]
    return FarmSpec(
        id=columns["id"],
        name=columns["name"],
        vip=columns["vip"],
        ports=parse_vport(columns["vport"]),
        protocol=columns["protocol"],
        algorithm=columns["algorithm"],
        nattype=columns["nattype"],
        persistence=columns["persistence"],
        ttl=columns["ttl"],
        running=columns["running"],
        source_addr=columns["source_addr"],
        device=interface.split(":", 1)[0] if interface else None,
        backends=tuple(backends),
    )


def all_farm_specs(session: Session) -> list[FarmSpec]:
    """Every farm's desired state, read with three plain SELECTs (no ORM objects).

    Start-up and drift repair read the whole database: at 10,000 farms the ORM's 30,000
    objects cost about five times as much as these rows.
    """
    return farm_specs(session)


def farm_specs(session: Session, farm_ids: Collection[int] | None = None) -> list[FarmSpec]:
    """The desired state of these farms (None: every farm), from plain SELECTs.

    What the database holds in the session's transaction, whatever ORM objects the session
    has in memory (a write's flushed rows included): the reconciler renders from this."""
    ids = None if farm_ids is None else sorted(farm_ids)
    health_q = select(BackendHealth.backend_id, BackendHealth.state)
    if ids is not None:
        health_q = health_q.join(Backend, Backend.id == BackendHealth.backend_id).where(
            Backend.farm_id.in_(ids)
        )
    health = dict(session.execute(health_q).all())
    backends: dict[int, list[BackendSpec]] = {}
    backend_q = select(
        Backend.farm_id,
        Backend.id,
        Backend.zapi_id,
        Backend.ip,
        Backend.port,
        Backend.weight,
        Backend.priority,
        Backend.max_conns,
        Backend.maintenance,
        Backend.source_addr,
    ).order_by(Backend.farm_id, Backend.zapi_id)
    if ids is not None:
        backend_q = backend_q.where(Backend.farm_id.in_(ids))
    for row in session.execute(backend_q):
        columns = row._mapping
        backends.setdefault(columns["farm_id"], []).append(
            _backend_spec_of(columns, health.get(columns["id"], "up"))
        )
    farm_q = select(
        Farm.id,
        Farm.name,
        Farm.vip,
        Farm.vport,
        Farm.protocol,
        Farm.algorithm,
        Farm.nattype,
        Farm.persistence,
        Farm.ttl,
        Farm.running,
        Farm.source_addr,
        Farm.interface,
    ).order_by(Farm.id)
    if ids is not None:
        farm_q = farm_q.where(Farm.id.in_(ids))
    return [
        _farm_spec_of(row._mapping, backends.get(row.id, ())) for row in session.execute(farm_q)
    ]


@dataclass(frozen=True)
class FarmRows:
    """Every mapped column of some farms and of their backends, plus the backends' health:
    the rows a write renders from (specs) and answers its ETag from (app.db.etags)."""

    farms: list[dict[str, Any]]
    backends: dict[int, list[dict[str, Any]]]  # farm id -> rows, by zapi id
    health: dict[int, str]  # backend id -> state (absent: up)
    with_ipds: set[int]  # farms with IPDS rules attached (app.db.ipds.farm_ipds reads them)

    def specs(self) -> list[FarmSpec]:
        return [self.spec(farm) for farm in self.farms]

    def spec(self, farm: dict[str, Any]) -> FarmSpec:
        return _farm_spec_of(
            farm,
            (
                _backend_spec_of(b, self.health.get(b["id"], "up"))
                for b in self.backends.get(farm["id"], ())
            ),
        )


@functools.cache
def _farm_rows_queries() -> tuple[Select[Any], Select[Any]]:
    """The two SELECTs of `farm_rows`, built once: building a statement of ~30 columns and
    its cache key costs five times what running it does (0.57 vs 0.09 ms per call)."""
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    # Each column labelled with its attribute's key: the keys of the ORM's rows (ETags).
    farm_columns = [getattr(Farm, c.key).label(c.key) for c in Farm.__mapper__.column_attrs]
    backend_columns = [
        getattr(Backend, c.key).label(c.key) for c in Backend.__mapper__.column_attrs
    ]
    backends = (
        select(*backend_columns, BackendHealth.state.label("health_state"))
        .outerjoin(BackendHealth, BackendHealth.backend_id == Backend.id)
        .where(Backend.farm_id.in_(ids))
        .order_by(Backend.zapi_id)
    )
    # Whether IPDS rules are attached, in the same SELECT: most farms have none, and then
    # the reconciler need not read the attachments.
    attached = or_(
        exists().where(IpdsFarmList.farm_id == Farm.id),
        exists().where(IpdsFarmDos.farm_id == Farm.id),
    )
    farms = (
        select(*farm_columns, attached.label("ipds_attached"))
        .where(Farm.id.in_(ids))
        .order_by(Farm.id)
    )
    return backends, farms


def farm_rows(session: Session, farm_ids: Collection[int]) -> FarmRows:
    """Two plain SELECTs in the session's transaction: what the database holds (a write's
    flushed rows included), whatever ORM objects the session has in memory."""
    params = {"ids": sorted(farm_ids)}
    backend_q, farms_q = _farm_rows_queries()
    connection = session.connection()  # Core: no ORM work on rows that are not objects
    backends: dict[int, list[dict[str, Any]]] = {}
    health: dict[int, str] = {}
    for row in connection.execute(backend_q, params):
        values = dict(row._mapping)
        state = values.pop("health_state")
        if state is not None:
            health[values["id"]] = state
        backends.setdefault(values["farm_id"], []).append(values)
    farms: list[dict[str, Any]] = []
    with_ipds: set[int] = set()
    for row in connection.execute(farms_q, params):
        values = dict(row._mapping)
        if values.pop("ipds_attached"):
            with_ipds.add(values["id"])
        farms.append(values)
    return FarmRows(farms=farms, backends=backends, health=health, with_ipds=with_ipds)


def guarded_farms(session: Session, *, only: Collection[int] | None = None) -> list[Farm]:
    """Farms whose backends the health checker probes: running, with farmguardian enabled
    (of the farms `only` names, when given)."""
    query = select(Farm).where(Farm.running.is_(True), Farm.fg_enabled.is_(True))
    if only is not None:
        query = query.where(Farm.id.in_(sorted(only)))
    return list(session.scalars(query.order_by(Farm.id)))
