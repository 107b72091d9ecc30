"""Backend use cases: add, modify, delete, maintenance."""

from __future__ import annotations

from typing import Any

from app.db import repositories as repo
from app.db.models import Backend, Farm
from app.db.repositories import farm_spec
from app.domain.rules import lowest_free_id
from app.errors import BadRequest, NotFound
from app.nft.render import MAX_BACKEND_MARK, SLOTS_PER_FARM
from app.services.farms import FarmService, status_of
from app.services.uow import UnitOfWork, Work
from app.services.values import as_int, as_ip, ip_family


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

    def add(self, name: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        description = "New farm backend"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            raw_ip = body.get("ip")
            if raw_ip is None or raw_ip == "":
                raise bad("Invalid backend IP value. It cannot be in blank.")
            ip = as_ip(raw_ip)
            if ip is None:
                raise bad("Invalid backend IP value.")
            if ip_family(ip) != ip_family(farm.vip):
                raise bad(
                    f"Invalid backend IP value. The farm's VIP is IPv{ip_family(farm.vip)} "
                    "and its backends must be of the same family."
                )
            port: int | None = None
            if body.get("port") not in (None, ""):
                port = as_int(body["port"])
                if port is None or not 1 <= port <= 65535:
                    raise bad("Invalid IP address and port for a backend, it can't be blank.")
            weight = 1
            if body.get("weight") is not None:
                value = as_int(body["weight"])
                if value is None or not 1 <= value <= 9:
                    raise bad("Invalid backend weight value, please insert a value form 1 to 9.")
                weight = value
            priority = 1
            if body.get("priority") is not None:
                value = as_int(body["priority"])
                if value is None or not 0 <= value <= 9:
                    raise bad(
                        "Invalid backend priority value, "
                        "please insert a value within the range 0-9."
                    )
                priority = value or 1  # ZAPI stores 0 as 1
            max_conns = 0
            if body.get("max_conns") is not None:
                value = as_int(body["max_conns"])
                if value is None:
                    raise bad(
                        "Invalid backend connection limit value, accepted values are 0 or higher."
                    )
                max_conns = value
            source_addr = None
            if body.get("source_addr") is not None:
                source_addr = self.farms.source_address(
                    body["source_addr"], family=ip_family(farm.vip), description=description
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
            )
            farm.backends.append(backend)
            _check_slots(farm, description)
            self.farms.check_netdev(work.session, farm_spec(farm), description=description)
            work.session.flush()
            if backend.id > MAX_BACKEND_MARK:
                raise bad("The backend limit has been reached.")
            work.touch(farm.id)
            params: dict[str, Any] = {
                "id": backend.zapi_id,
                "ip": ip,
                "port": port,
                "weight": weight if body.get("weight") is not None else None,
                "priority": priority if body.get("priority") is not None else None,
                "max_conns": max_conns,
            }
            if source_addr is not None:
                params["source_addr"] = source_addr
            status = status_of(farm, self.farms.unreachable())
        return params, status

    def modify(
        self, name: str, backend_id: int, body: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        description = "Modify backend"
        echo = dict(body)
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)

            def bad(message: str) -> BadRequest:
                return BadRequest(message, description=description)

            ip, port = backend.ip, backend.port
            if "ip" in body and body["ip"] is not None:
                parsed = as_ip(body["ip"])
                if parsed is None or ip_family(parsed) != ip_family(farm.vip):
                    raise bad("Invalid IP.")
                ip = echo["ip"] = parsed
            if "port" in body and body["port"] is not None:
                if body["port"] == "":
                    port = None
                    echo["port"] = None
                else:
                    value = as_int(body["port"])
                    if value is None or not 1 <= value <= 65535:
                        raise bad("Invalid port number.")
                    port = echo["port"] = value
            weight = backend.weight
            if body.get("weight") is not None:
                value = as_int(body["weight"])
                if value is None or not 1 <= value <= 9:
                    raise bad("Invalid backend weight value, please insert a value form 1 to 9.")
                weight = echo["weight"] = value
            priority = backend.priority
            if body.get("priority") is not None:
                value = as_int(body["priority"])
                if value is None or not 0 <= value <= 9:
                    raise bad(
                        f"Error, trying to modify the backends in the farm {farm.name}, "
                        "invalid priority. The higher value is 9."
                    )
                echo["priority"] = value
                priority = value or 1
            max_conns = backend.max_conns
            if body.get("max_conns") is not None:
                value = as_int(body["max_conns"])
                if value is None:
                    raise bad(
                        f"Error, trying to modify the connection limit in the farm {farm.name}, "
                        "invalid value."
                    )
                max_conns = echo["max_conns"] = value
            if body.get("source_addr") is not None:
                backend.source_addr = echo["source_addr"] = self.farms.source_address(
                    body["source_addr"], family=ip_family(farm.vip), description=description
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
            work.touch(farm.id)
            status = status_of(farm, self.farms.unreachable())
        return echo, status

    def delete(self, name: str, backend_id: int) -> str:
        description = "Delete backend"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)
            farm.backends.remove(backend)
            work.cut(backend.id)
            work.touch(farm.id)
            work.session.flush()
            status = status_of(farm, self.farms.unreachable())
        return status

    def maintenance(self, name: str, backend_id: int, body: dict[str, Any]) -> tuple[str, str]:
        description = "Set backend status"
        with self.uow.write(description) as work:
            farm = _farm_or_404(work, name, description)
            backend = _backend_or_404(farm, backend_id, description)
            action = body.get("action")
            if action is None:
                raise BadRequest("No maintenance action was requested.", description=description)
            if action == "maintenance":
                mode = body.get("mode", "drain")
                if mode is None:
                    mode = "drain"
                if mode not in ("drain", "cut"):
                    raise BadRequest(
                        "Error, the maintenance mode is not a valid value.",
                        description=description,
                    )
                backend.maintenance = True
                backend.maintenance_mode = mode
                if mode == "cut":
                    work.cut(backend.id)
            elif action == "up":
                backend.maintenance = False
                backend.maintenance_mode = ""
            else:
                raise BadRequest(
                    "Invalid action; the possible actions are up and maintenance",
                    description=description,
                )
            work.touch(farm.id)
            status = status_of(farm, self.farms.unreachable())
        return str(action), status
