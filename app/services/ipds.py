"""IPDS use cases: lists (blacklists/whitelists) and their sources, DoS rules, farm attachments.

Every change is one unit of work: validated, written, rendered and applied as one nftables
batch (or refused with nothing changed).  A source added to or removed from a list reaches
the kernel as that one element, whatever the list's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert

from app.db import ipds as q
from app.db import repositories as repo
from app.db.models import Base, Farm, IpdsDos, IpdsFarmDos, IpdsFarmList, IpdsList, IpdsSource
from app.domain import ruleset
from app.domain.ipds import (
    DEFAULT_METER_SIZE,
    DESCRIPTIONS,
    DOS_DEFAULTS,
    DOS_RULES,
    METERED_RULES,
    SYSTEM_DOS_RULES,
    Source,
    parse_source,
)
from app.errors import BadRequest, NotFound, ZapiError
from app.reconcile.uow import UnitOfWork, Work
from app.schemas.ipds import (
    DosCreate,
    DosUpdate,
    FarmRuleAttach,
    ListCreate,
    ListUpdate,
    SourceAdd,
    parse,
)


@dataclass(frozen=True)
class DropCounter:
    name: str
    kind: str  # "policy" of a list, or the DoS rule
    packets: int
    bytes: int


def _bad_source(value: Any, field: str, description: str) -> Source:
    try:
        return parse_source(value)
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            f"The parameter {field} has not a valid value: {value!r} is not an IP address "
            "or a CIDR network (host bits clear).",
            description=description,
        ) from exc


def _source_row(list_id: int, zapi_id: int, source: Source) -> dict[str, Any]:
    return {
        "list_id": list_id,
        "zapi_id": zapi_id,
        "source": source.text,
        "family": source.family,
    }


@dataclass(frozen=True)
class RuleKind:
    """What differs between applying a list and a DoS rule to a farm (Zevenet's texts)."""

    label: str
    model: type[Any]  # the attachment row's model (its key is (farm id, rule id))
    link: Callable[[int, int], Any]
    find: Callable[[Any, str, str], Any]
    attach_description: Callable[[str, str], str]
    detach_description: Callable[[str, str], str]
    already: Callable[[str, str], str]
    not_applied: Callable[[str, str], ZapiError]


def _list_link(farm_id: int, list_id: int) -> IpdsFarmList:
    return IpdsFarmList(farm_id=farm_id, list_id=list_id)


def _dos_link(farm_id: int, dos_id: int) -> IpdsFarmDos:
    return IpdsFarmDos(farm_id=farm_id, dos_id=dos_id)


class IpdsService:
    def __init__(self, uow: UnitOfWork, counters: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self.uow = uow
        self.counters = counters

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _list(session: Any, name: str, description: str, missing: str = "") -> IpdsList:
        row = q.list_by_name(session, name)
        if row is None:
            raise NotFound(missing or f"{name} doesn't exist.", description=description)
        return row

    @staticmethod
    def _dos(session: Any, name: str, description: str, missing: str = "") -> IpdsDos:
        row = q.dos_by_name(session, name)
        if row is None:
            raise NotFound(missing or f"{name} not found.", description=description)
        return row

    @staticmethod
    def _farm(session: Any, name: str, description: str) -> Farm:
        farm = repo.get_farm(session, name)
        if farm is None:
            raise NotFound(f"{name} doesn't exist.", description=description)
        return farm

    @staticmethod
    def _farm_names(session: Any, farm_ids: list[int]) -> list[str]:
        return sorted(f.name for f in (session.get(Farm, i) for i in farm_ids) if f is not None)

    def _list_view(self, session: Any, row: IpdsList, *, with_sources: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "name": row.name,
            "type": row.type,
            "policy": row.policy,
            "status": "up",
            "preload": "false",
            "farms": self._farm_names(session, q.farms_using_list(session, row.id)),
        }
        if with_sources:
            view["sources"] = [{"id": i, "source": s} for i, s in q.sources(session, row.id)]
        else:
            view["sources"] = q.source_count(session, row.id)
        return view

    def _dos_view(self, session: Any, row: IpdsDos) -> dict[str, Any]:
        view: dict[str, Any] = {
            "name": row.name,
            "rule": row.rule,
            "type": "farm",
            "status": "up",
            "description": DESCRIPTIONS[row.rule],
            "farms": self._farm_names(session, q.farms_using_dos(session, row.id)),
        }
        for key in DOS_RULES[row.rule]:
            view[key] = getattr(row, key)
        if row.rule in METERED_RULES:
            view["meter_size"] = row.meter_size
            view["overflow_limit"] = row.overflow_limit
            if row.rule != "limitconns":
                view["overflow_burst"] = row.overflow_burst
        return view

    # -- lists -----------------------------------------------------------------------------

    def lists(self) -> list[dict[str, Any]]:
        with self.uow.read() as session:
            return [self._list_view(session, r, with_sources=False) for r in q.all_lists(session)]

    def get_list(self, name: str) -> dict[str, Any]:
        description = f"Get list {name}"
        with self.uow.read() as session:
            row = self._list(session, name, description, "Requested list doesn't exist.")
            return self._list_view(session, row, with_sources=True)

    def create_list(self, body: dict[str, Any]) -> dict[str, Any]:
        description = "Create a blacklist."
        data = parse(ListCreate, body, description=description)
        with self.uow.write(description) as work:
            if q.list_by_name(work.session, data.name) is not None:
                raise BadRequest(f"A list already exists with name '{data.name}'.")
            row = IpdsList(name=data.name, type=data.type, policy=data.policy)
            work.session.add(row)
            work.session.flush()
            work.touch_list(row.id)
            return self._list_view(work.session, row, with_sources=False)

    def modify_list(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        description = f"Modify list {name}."
        data = parse(ListUpdate, body, description=description)
        parsed: list[Source] | None = None
        if data.sources is not None:
            parsed = [_bad_source(v, "sources", description) for v in data.sources]
            texts = [s.text for s in parsed]
            if len(set(texts)) != len(texts):
                raise BadRequest(
                    "The parameter sources has not a valid value: a source is repeated.",
                    description=description,
                )
        with self.uow.write(description) as work:
            row = self._list(work.session, name, description, f"The list '{name}' doesn't exist.")
            if data.policy is not None and data.policy != row.policy:
                row.policy = data.policy
            if parsed is not None:
                work.session.execute(delete(IpdsSource).where(IpdsSource.list_id == row.id))
                if parsed:
                    # The table, not the mapped class: a plain executemany, without the ORM's
                    # per-row bulk bookkeeping (seconds for 1,000,000 sources).
                    work.session.execute(
                        insert(Base.metadata.tables[IpdsSource.__tablename__]),
                        [_source_row(row.id, i, s) for i, s in enumerate(parsed)],
                    )
                work.touch_list(row.id)
            work.session.flush()
            view = self._list_view(work.session, row, with_sources=False)
            # Zevenet answers a change without the sources and the farms.
            return {k: v for k, v in view.items() if k not in ("sources", "farms")}

    def delete_list(self, name: str) -> None:
        description = f"Delete list '{name}'"
        with self.uow.write(description) as work:
            row = self._list(work.session, name, description)
            farms = self._farm_names(work.session, q.farms_using_list(work.session, row.id))
            if farms:
                raise BadRequest("Delete this list from all farms before than delete it.")
            list_id = row.id
            work.session.delete(row)
            work.session.flush()
            work.touch_list(list_id)

    def list_sources(self, name: str) -> list[dict[str, Any]]:
        description = f"Get {name} sources"
        with self.uow.read() as session:
            row = self._list(session, name, description, "Requested list doesn't exist.")
            return [{"id": i, "source": s} for i, s in q.sources(session, row.id)]

    def add_source(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        description = f"Post source to {name}."
        data = parse(SourceAdd, body, description=description)
        source = _bad_source(data.source, "source", description)
        with self.uow.write(description) as work:
            row = self._list(work.session, name, description)
            if q.source_by_text(work.session, row.id, source.text) is not None:
                raise BadRequest(f"{source.text} already exists in the list.")
            zapi_id = q.next_source_id(work.session, row.id)
            work.session.execute(insert(IpdsSource), [_source_row(row.id, zapi_id, source)])
            work.change_list(row.id, added={source.text}, removed=set())
            return {"id": zapi_id, "source": source.text}

    def delete_source(self, name: str, source_id: str) -> str:
        description = f"Delete source from the list {name}"
        with self.uow.write(description) as work:
            row = self._list(work.session, name, description)
            found = (
                q.source_by_zapi_id(work.session, row.id, int(source_id))
                if source_id.isdigit() and len(source_id) < 10
                else None
            )
            if found is None:
                raise NotFound(f"ID {source_id} doesn't exist in the list {name}.")
            text = found.source
            work.session.delete(found)
            work.session.flush()
            work.change_list(row.id, added=set(), removed={text})
            return text

    # -- DoS rules -------------------------------------------------------------------------

    def dos_rules(self) -> dict[str, Any]:
        return {
            "farm": [{"rule": r, "description": DESCRIPTIONS[r]} for r in DOS_RULES],
            "system": [],
        }

    def dos_list(self) -> list[dict[str, Any]]:
        with self.uow.read() as session:
            return [self._dos_view(session, r) for r in q.all_dos(session)]

    def get_dos(self, name: str) -> dict[str, Any]:
        with self.uow.read() as session:
            description = f"Get the DoS rule {name}"
            row = self._dos(session, name, description, f"{name} doesn't exist.")
            return self._dos_view(session, row)

    def create_dos(self, body: dict[str, Any]) -> dict[str, Any]:
        description = f"Create the DoS rule {body.get('rule', '')}"
        data = parse(DosCreate, body, description=description)
        if data.name == "rules":
            raise BadRequest(
                "The name is not valid, it is a reserved word.", description=description
            )
        if data.rule in SYSTEM_DOS_RULES:
            raise BadRequest(
                f"The parameter rule has not a valid value: {data.rule} is a system rule; "
                f"kernlb's farm rules are {', '.join(DOS_RULES)}.",
                description=description,
            )
        if data.rule not in DOS_RULES:
            raise BadRequest(
                f"The parameter rule has not a valid value: unknown rule {data.rule!r}; "
                f"the rules are {', '.join(DOS_RULES)}.",
                description=description,
            )
        with self.uow.write(description) as work:
            if q.dos_by_name(work.session, data.name) is not None:
                raise BadRequest(f"{data.name} already exists.")
            values: dict[str, int] = {
                "limit": 0,
                "limit_burst": 0,
                "limit_conns": 0,
                "meter_size": DEFAULT_METER_SIZE,
                "overflow_limit": 0,
                "overflow_burst": 0,
                **DOS_DEFAULTS[data.rule],
            }
            row = IpdsDos(name=data.name, rule=data.rule, **values)
            work.session.add(row)
            work.session.flush()
            return self._dos_view(work.session, row)

    def modify_dos(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        description = f"Modify the DoS rule {name}"
        data = parse(DosUpdate, body, description=description)
        with self.uow.write(description) as work:
            row = self._dos(work.session, name, description, f"{name} not found")
            allowed = set(DOS_RULES[row.rule])
            if row.rule in METERED_RULES:
                allowed |= {"meter_size", "overflow_limit"}
                if row.rule != "limitconns":
                    allowed.add("overflow_burst")
            for key, value in data.model_dump(exclude_none=True).items():
                if key not in allowed:
                    raise BadRequest(f"The parameter {key} does not apply to the rule {row.rule}.")
                setattr(row, key, value)
            work.session.flush()
            return self._dos_view(work.session, row)

    def delete_dos(self, name: str) -> None:
        description = f"Delete the DoS rule {name}"
        with self.uow.write(description) as work:
            row = self._dos(work.session, name, description)
            farms = self._farm_names(work.session, q.farms_using_dos(work.session, row.id))
            if farms:
                raise BadRequest("Error, disable this rule from all farms before than delete it.")
            work.session.delete(row)

    # -- farms -----------------------------------------------------------------------------

    def _attachable(self, work: Work, farm_name: str, description: str) -> Farm:
        farm = self._farm(work.session, farm_name, description)
        if farm.nattype in ("dsr", "stateless_dnat"):
            raise BadRequest(
                f"IPDS rules are not supported on {farm.nattype} farms: they are forwarded in "
                "the ingress hook without conntrack. Use a nat or dnat farm."
            )
        return farm

    def attach(self, kind: RuleKind, farm_name: str, body: dict[str, Any]) -> tuple[str, str]:
        """Apply a list or DoS rule to a farm: (description, message) of Zevenet's answer."""
        data = parse(FarmRuleAttach, body, description="Apply a rule to a farm")
        description = kind.attach_description(data.name, farm_name)
        with self.uow.write(description) as work:
            farm = self._attachable(work, farm_name, description)
            row = kind.find(work.session, data.name, description)
            if work.session.get(kind.model, (farm.id, row.id)) is not None:
                raise BadRequest(kind.already(data.name, farm_name))
            work.session.add(kind.link(farm.id, row.id))
        return (
            description,
            f"{kind.label} {data.name} was applied successful to the farm {farm_name}.",
        )

    def detach(self, kind: RuleKind, farm_name: str, name: str) -> tuple[str, str]:
        """Remove a list or DoS rule from a farm: (description, message)."""
        description = kind.detach_description(name, farm_name)
        with self.uow.write(description) as work:
            farm = self._farm(work.session, farm_name, description)
            row = kind.find(work.session, name, description)
            link = work.session.get(kind.model, (farm.id, row.id))
            if link is None:
                raise kind.not_applied(name, farm_name)
            work.session.delete(link)
        return description, f"{kind.label} {name} was removed successful from the farm {farm_name}."

    def farm_rules(self, farm_name: str) -> dict[str, Any]:
        """The `ipds` object of GET /farms/NAME/ipds (Zevenet's getIPDSfarmsRules shape)."""
        with self.uow.read() as session:
            farm = self._farm(session, farm_name, f"Get IPDS rules of {farm_name}")
            return self._rules(session, farm)

    def rules_of(self, farm: Farm) -> dict[str, Any]:
        """`farm_rules` of a farm just read (GET /farms/NAME): not read a second time."""
        with self.uow.read() as session:
            return self._rules(session, farm)

    @staticmethod
    def _rules(session: Any, farm: Farm) -> dict[str, Any]:
        spec = q.farm_ipds(session, [farm.id]).get(farm.id)
        # Rules kept from before a switch to dsr/stateless_dnat are not enforced there.
        status = "down" if farm.nattype in ("dsr", "stateless_dnat") else "up"
        return {
            "blacklists": [{"name": r.name, "status": status} for r in spec.lists] if spec else [],
            "dos": [{"name": d.name, "status": status} for d in spec.dos] if spec else [],
            "rbl": [],
            "waf": [],
        }

    def drop_counters(self, farm_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
        """Per farm: what each attached list and DoS rule dropped (kernel counters)."""
        with self.uow.read() as session:
            specs = q.farm_ipds(session, farm_ids)
        if not specs:
            return {}
        kernel = self.counters()
        out: dict[int, dict[str, Any]] = {}
        for farm_id, spec in specs.items():
            lists = []
            for ref in spec.lists:
                name = (
                    ruleset.allow_counter_name(farm_id)
                    if ref.policy == "allow"
                    else ruleset.list_counter_name(farm_id, ref.id)
                )
                packets, nbytes = kernel.get(name, (0, 0))
                lists.append(
                    {"name": ref.name, "policy": ref.policy, "packets": packets, "bytes": nbytes}
                )
            rules = []
            for dos in spec.dos:
                packets, nbytes = kernel.get(ruleset.rule_counter_name(farm_id, dos.id), (0, 0))
                rules.append(
                    {"name": dos.name, "rule": dos.rule, "packets": packets, "bytes": nbytes}
                )
            out[farm_id] = {"blacklists": lists, "dos": rules}
        return out

    def farm_drop_counters(self, farm_name: str) -> dict[str, Any] | None:
        with self.uow.read() as session:
            farm = repo.get_farm(session, farm_name)
            if farm is None:
                return None
            farm_id = farm.id
        return self.drop_counters([farm_id]).get(farm_id)

    def all_drop_counters(self) -> dict[str, dict[str, Any]]:
        by_id = self.drop_counters()
        if not by_id:
            return {}
        with self.uow.read() as session:
            names = {f.id: f.name for f in repo.list_farms(session)}
        return {names[i]: v for i, v in by_id.items() if i in names}


BLACKLIST = RuleKind(
    label="Blacklist rule",
    model=IpdsFarmList,
    link=_list_link,
    find=IpdsService._list,
    attach_description=lambda _name, _farm: "Apply a rule to a farm",
    detach_description=lambda _name, _farm: "Delete a rule from a farm",
    already=lambda name, farm: f"{name} is already applied to {farm}.",
    not_applied=lambda name, farm: NotFound(f"Not found a rule associated to {name} and {farm}."),
)
DOS = RuleKind(
    label="DoS rule",
    model=IpdsFarmDos,
    link=_dos_link,
    find=IpdsService._dos,
    attach_description=lambda name, farm: f"Apply the DoS rule {name} to the farm {farm}",
    detach_description=lambda name, farm: f"Unset the DoS rule {name} from the farm {farm}",
    already=lambda _name, farm: f"This rule already is enabled in {farm}.",
    not_applied=lambda _name, farm: BadRequest(f"This rule no is enabled in {farm}."),
)
