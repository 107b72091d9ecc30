"""Backend use cases: add, modify, delete, maintenance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db import repositories as repo
from app.db.models import Backend, Farm
from app.db.repositories import farm_spec
from app.domain.rules import lowest_free_id
from app.domain.ruleset import MAX_BACKEND_MARK, SLOTS_PER_FARM
from app.domain.values import ip_family
from app.errors import BadRequest, NotFound
from app.reconcile.uow import UnitOfWork, Work
from app.schemas.requests import BackendCreate, BackendUpdate, MaintenanceBody
from app.services.farms import FarmService, status_of


def _farm_or_404(work: Work, name: str, description: str) -> Farm:
    farm = repo.get_farm(work.session, name)
    if farm is None:
        raise NotFound(f"The farmname {name} does not exist.", description=description)
    return farm


def _backend_or_404(farm: Farm, backend_id: int, description: str) -> Backend:
    backend = repo.get_backend(farm, backend_id)
    if backend is None:
        raise NotFound("Could not find a backend with such id.", description=description)
    return backend


def _check_duplicate(farm: Farm, ip: str, port: int | None, *, skip: Backend | None) -> None:
    for other in farm.backends:
        if other is skip:
            continue
        if other.ip == ip and other.port == port:
            raise BadRequest(f"The IP {ip} is already set in farm {farm.name}")


def _check_slots(farm: Farm, description: str) -> None:
    total = sum(b.weight for b in farm.backends)
    if total > SLOTS_PER_FARM:
        raise BadRequest(
            f"The farm {farm.name} cannot take that much weight: the sum of its backends' "
            f"weights is limited to {SLOTS_PER_FARM}.",
            description=description,
        )


class BackendService:
    def __init__(self, uow: UnitOfWork, farms: FarmService) -> None:
        self.uow = uow
        self.farms = farms

    def list(self, name: str) -> list[Backend]:
        with self.uow.read() as session:
            farm = repo.get_farm(session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description="List backends")
            return list(farm.backends)

    def add(self, name: str, body: Mapping[str, Any] | BackendCreate) -> tuple[dict[str, Any], str]:
        description = "New farm backend"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            request = BackendCreate.parse(body, description=description)
            ip = request.ip
            if ip_family(ip) != ip_family(farm.vip):
                raise bad(
                    f"Invalid backend IP value. The farm's VIP is IPv{ip_family(farm.vip)} "
                    "and its backends must be of the same family."
                )
            port = request.port
            weight = request.weight if request.weight is not None else 1
            priority = request.priority or 1  # ZAPI stores 0 (and no priority) as 1
            max_conns = request.max_conns if request.max_conns is not None else 0
            source_addr = None
            if request.source_addr is not None:
                source_addr = self.farms.source_address(
                    request.source_addr, family=ip_family(farm.vip), description=description
                )
            try:
                _check_duplicate(farm, ip, port, skip=None)
            except BadRequest as exc:
                raise bad(exc.message) from None
            backend = Backend(
                source_addr=source_addr,
                zapi_id=lowest_free_id(b.zapi_id for b in farm.backends),
                ip=ip,
                port=port,
                weight=weight,
                priority=priority,
                max_conns=max_conns,
                health=None,  # a new backend has no health row: do not look one up
            )
            farm.backends.append(backend)
            _check_slots(farm, description)
            self.farms.check_netdev(work.session, farm_spec(farm), description=description)
            work.session.flush()
            if backend.id > MAX_BACKEND_MARK:
                raise bad("The backend limit has been reached.")
            params: dict[str, Any] = {
                "id": backend.zapi_id,
                "ip": ip,
                "port": port,
                "weight": request.weight,
                "priority": priority if request.priority is not None else None,
                "max_conns": max_conns,
            }
            if source_addr is not None:
                params["source_addr"] = source_addr
            status = status_of(farm, self.farms.unreachable())
        return params, status

    def modify(
        self, name: str, backend_id: int, body: Mapping[str, Any] | BackendUpdate
    ) -> tuple[dict[str, Any], str]:
        description = "Modify backend"
        echo = dict(body) if isinstance(body, Mapping) else body.echo()
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            request = BackendUpdate.parse(body, description=description, farm=farm.name)
            ip, port = backend.ip, backend.port
            if request.ip is not None:
                if ip_family(request.ip) != ip_family(farm.vip):
                    raise bad("Invalid IP.")
                ip = echo["ip"] = request.ip
            if request.port is not None:
                port = None if request.port == "" else int(request.port)
                echo["port"] = port
            weight = backend.weight
            if request.weight is not None:
                weight = echo["weight"] = request.weight
            priority = backend.priority
            if request.priority is not None:
                echo["priority"] = request.priority
                priority = request.priority or 1
            max_conns = backend.max_conns
            if request.max_conns is not None:
                max_conns = echo["max_conns"] = request.max_conns
            if request.source_addr is not None:
                backend.source_addr = echo["source_addr"] = self.farms.source_address(
                    request.source_addr, family=ip_family(farm.vip), description=description
                )
            if (ip, port) != (backend.ip, backend.port):
                try:
                    _check_duplicate(farm, ip, port, skip=backend)
                except BadRequest as exc:
                    raise bad(exc.message) from None
            backend.ip, backend.port = ip, port
            backend.weight, backend.priority, backend.max_conns = weight, priority, max_conns
            _check_slots(farm, description)
            self.farms.check_netdev(work.session, farm_spec(farm), description=description)
            status = status_of(farm, self.farms.unreachable())
        return echo, status

    def delete(self, name: str, backend_id: int) -> str:
        description = "Delete backend"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)
            farm.backends.remove(backend)
            work.cut(backend.id)
            work.session.flush()
            status = status_of(farm, self.farms.unreachable())
        return status

    def maintenance(
        self, name: str, backend_id: int, body: Mapping[str, Any] | MaintenanceBody
    ) -> tuple[str, str]:
        description = "Set backend status"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)
            request = MaintenanceBody.parse(body, description=description)
            action = request.action
            if action == "maintenance":
                mode = request.mode or "drain"
                backend.maintenance = True
                backend.maintenance_mode = mode
                if mode == "cut":
                    work.cut(backend.id)
            else:
                backend.maintenance = False
                backend.maintenance_mode = ""
            status = status_of(farm, self.farms.unreachable())
        return action, status
