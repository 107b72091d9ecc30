"""Queries of the IPDS tables (no commits)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import IpdsDos, IpdsFarmDos, IpdsFarmList, IpdsList, IpdsSource
from app.domain.ipds import DosSpec, IpdsSpec, ListRef, ListSpec


def dos_spec(row: IpdsDos) -> DosSpec:
    return DosSpec(
        id=row.id,
        name=row.name,
        rule=row.rule,
        limit=row.limit,
        limit_burst=row.limit_burst,
        limit_conns=row.limit_conns,
        meter_size=row.meter_size,
        overflow_limit=row.overflow_limit,
        overflow_burst=row.overflow_burst,
    )


def farm_ipds(session: Session, farm_ids: Iterable[int] | None = None) -> dict[int, IpdsSpec]:
    """What is attached to each farm (farms without IPDS are absent)."""
    lists_q = select(IpdsFarmList.farm_id, IpdsList.id, IpdsList.name, IpdsList.policy).join(
        IpdsList, IpdsList.id == IpdsFarmList.list_id
    )
    dos_q = select(IpdsFarmDos.farm_id, IpdsDos).join(IpdsDos, IpdsDos.id == IpdsFarmDos.dos_id)
    if farm_ids is not None:
        ids = list(farm_ids)
        lists_q = lists_q.where(IpdsFarmList.farm_id.in_(ids))
        dos_q = dos_q.where(IpdsFarmDos.farm_id.in_(ids))
    lists: dict[int, list[ListRef]] = {}
    for farm_id, list_id, name, policy in session.execute(lists_q.order_by(IpdsList.id)):
        lists.setdefault(farm_id, []).append(ListRef(id=list_id, name=name, policy=policy))
    dos: dict[int, list[DosSpec]] = {}
    for farm_id, row in session.execute(dos_q.order_by(IpdsDos.id)):
        dos.setdefault(farm_id, []).append(dos_spec(row))
    return {
        farm_id: IpdsSpec(lists=tuple(lists.get(farm_id, ())), dos=tuple(dos.get(farm_id, ())))
        for farm_id in lists.keys() | dos.keys()
    }


def _members(session: Session, list_id: int | None) -> dict[int, dict[int, set[str]]]:
    query = select(IpdsSource.list_id, IpdsSource.family, IpdsSource.source)
    if list_id is not None:
        query = query.where(IpdsSource.list_id == list_id)
    found: dict[int, dict[int, set[str]]] = {}
    for owner, family, source in session.execute(query):
        found.setdefault(owner, {}).setdefault(family, set()).add(source)
    return found


def list_spec(session: Session, list_id: int) -> ListSpec | None:
    row = session.get(IpdsList, list_id)
    if row is None:
        return None
    members = _members(session, list_id).get(list_id, {})
    return ListSpec(
        id=row.id,
        name=row.name,
        policy=row.policy,
        members={family: frozenset(m) for family, m in members.items()},
    )


def all_list_specs(session: Session) -> list[ListSpec]:
    members = _members(session, None)
    return [
        ListSpec(
            id=row.id,
            name=row.name,
            policy=row.policy,
            members={f: frozenset(m) for f, m in members.get(row.id, {}).items()},
        )
        for row in session.scalars(select(IpdsList).order_by(IpdsList.id))
    ]


def list_by_name(session: Session, name: str) -> IpdsList | None:
    return session.scalars(select(IpdsList).where(IpdsList.name == name)).first()


def dos_by_name(session: Session, name: str) -> IpdsDos | None:
    return session.scalars(select(IpdsDos).where(IpdsDos.name == name)).first()


def all_lists(session: Session) -> list[IpdsList]:
    return list(session.scalars(select(IpdsList).order_by(IpdsList.id)))


def all_dos(session: Session) -> list[IpdsDos]:
    return list(session.scalars(select(IpdsDos).order_by(IpdsDos.id)))


def source_count(session: Session, list_id: int) -> int:
    return int(session.scalar(select(func.count()).where(IpdsSource.list_id == list_id)) or 0)


def sources(session: Session, list_id: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(IpdsSource.zapi_id, IpdsSource.source)
        .where(IpdsSource.list_id == list_id)
        .order_by(IpdsSource.zapi_id)
    )
    return [(zapi_id, source) for zapi_id, source in rows]


def source_by_zapi_id(session: Session, list_id: int, zapi_id: int) -> IpdsSource | None:
    return session.scalars(
        select(IpdsSource).where(IpdsSource.list_id == list_id, IpdsSource.zapi_id == zapi_id)
    ).first()


def next_source_id(session: Session, list_id: int) -> int:
    top = session.scalar(select(func.max(IpdsSource.zapi_id)).where(IpdsSource.list_id == list_id))
    return 0 if top is None else int(top) + 1


def source_by_text(session: Session, list_id: int, text: str) -> IpdsSource | None:
    return session.scalars(
        select(IpdsSource).where(IpdsSource.list_id == list_id, IpdsSource.source == text)
    ).first()


def farms_using_list(session: Session, list_id: int) -> list[int]:
    return list(
        session.scalars(select(IpdsFarmList.farm_id).where(IpdsFarmList.list_id == list_id))
    )


def farms_using_dos(session: Session, dos_id: int) -> list[int]:
    return list(session.scalars(select(IpdsFarmDos.farm_id).where(IpdsFarmDos.dos_id == dos_id)))
