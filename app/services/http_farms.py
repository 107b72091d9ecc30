"""http/https farm use cases: farms, services, service backends, certificates.

Each change is one transaction: validate, write, flush, render the whole HAProxy
configuration from the session and apply it (runtime API or seamless reload), then commit.
HAProxy refusing the configuration rolls the transaction back (a 400), like a refused
nftables batch; a commit that fails after HAProxy took the change puts HAProxy back.
"""

from __future__ import annotations

import builtins
import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.db import http_repository as hrepo
from app.db import repositories as repo
from app.db.models import Certificate, HttpBackend, HttpFarm, HttpFarmCertificate, HttpService
from app.domain.rules import farm_status_of
from app.domain.values import as_ip, is_farm_name
from app.errors import BadRequest, NotFound
from app.haproxy.engine import HaproxyEngine
from app.health.checks import CheckError
from app.net.addresses import AddressBook
from app.schemas import http as schema
from app.schemas.requests import FarmGuardianUpdate
from app.services.http_health import service_check, service_health
from app.services.uow import UnitOfWork, Work
from app.tls import self_signed

# cryptography (~25 ms of CPU to import) is imported where certificates are read: most starts
# and most requests never need it.
if TYPE_CHECKING:
    from cryptography import x509

DEFAULT_CERTIFICATE = "zencert.pem"
FG_DESCRIPTION = "Modify farm guardian"
_KEY_BLOCK = re.compile(r"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.S)
DEFAULT_ERRORS = {
    414: "Request URI is too long",
    500: "An internal server error occurred. Please try again later.",
    501: "This method may not be used.",
    503: "The service is not available. Please try again later.",
}


@dataclass(frozen=True)
class HttpFarmView:
    farm: HttpFarm
    status: str
    down: frozenset[int] = frozenset()  # backends (HttpBackend.id) failing their check

    def backend_status(self, backend: HttpBackend) -> str:
        return backend_status(backend, self.down)


def farm_status(farm: HttpFarm, down: frozenset[int] = frozenset()) -> str:
    """Zevenet's farm status (§4.4) for http farms; `down`: backends failing their check."""
    statuses = (backend_status(b, down) for s in farm.services for b in s.backends)
    return farm_status_of(farm.running, statuses)


def backend_status(backend: HttpBackend, down: frozenset[int] = frozenset()) -> str:
    if backend.maintenance:
        return "maintenance"
    return "down" if backend.id in down else "up"


class HttpFarmService:
    def __init__(
        self,
        uow: UnitOfWork,
        engine: HaproxyEngine,
        addresses: AddressBook,
        *,
        plugin_dir: Path = Path("/usr/lib/nagios/plugins"),
    ) -> None:
        self.uow = uow
        self.engine = engine
        self.addresses = addresses
        self.plugin_dir = plugin_dir  # farmguardian's plugins (settings.fg_plugin_dir)
        self.health = service_health(plugin_dir)

    # -- the unit of work -----------------------------------------------------------------

    @contextmanager
    def write(self, description: str) -> Iterator[Work]:
        """The uow's transaction, with HAProxy applied after the flush and before the commit."""
        staged = False
        try:
            with self.uow.write(description) as work:
                yield work
                work.session.flush()
                work.session.expire_all()
                farms, pems = hrepo.desired_http_state(work.session, self.health)
                if any(f.running for f in farms) and not self.engine.available():
                    raise BadRequest(
                        "HAProxy is not installed: http farms cannot run.", description=description
                    )
                self.engine.stage(farms, pems)
                staged = True
        except BaseException:
            if staged:
                self.engine.abandon()
            raise
        self.engine.confirm()

    def sync(self) -> None:
        """Start-up: make HAProxy serve the committed state."""
        with self.uow.read() as session:
            farms, pems = hrepo.desired_http_state(session, self.health)
        if any(f.running for f in farms) and not self.engine.available():
            return
        self.engine.sync(farms, pems)

    # -- reads ----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        with self.uow.read() as session:
            return hrepo.http_farm_exists(session, name)

    def list(self) -> list[HttpFarmView]:
        with self.uow.read() as session:
            down = self.engine.down_servers()
            return [
                HttpFarmView(f, farm_status(f, down), down) for f in hrepo.list_http_farms(session)
            ]

    def get(self, name: str, *, description: str, message: str | None = None) -> HttpFarmView:
        with self.uow.read() as session:
            farm = hrepo.get_http_farm(session, name)
            if farm is None:
                raise NotFound(
                    message or f"The farmname {name} does not exist.", description=description
                )
            down = self.engine.down_servers()
            return HttpFarmView(farm, farm_status(farm, down), down)

    def service(self, name: str, service: str) -> tuple[HttpFarm, HttpService]:
        description = "Get services of a farm"
        with self.uow.read() as session:
            farm = self._farm(session, name, description)
            return farm, self._service(
                farm, service, description, "The required service does not exist."
            )

    # -- farms ----------------------------------------------------------------------------

    def create(self, body: dict[str, Any], profile: str) -> tuple[HttpFarm, str]:
        name = body.get("farmname")
        description = f"Creating farm '{name}'"
        assert isinstance(name, str)
        with self.write(description) as work:
            session = work.session
            if repo.get_farm(session, name) or hrepo.get_http_farm(session, name):
                raise BadRequest(
                    "Error trying to create a new farm, the farm name already exists.",
                    description=description,
                )
            vip = as_ip(body.get("vip"))
            if vip is None:
                raise BadRequest("Invalid vip.", description=description)
            interface = self.addresses.interface_of(vip)
            if interface is None:
                raise BadRequest(
                    "The vip IP must exist in some interface.", description=description
                )
            try:
                vport = schema._digits(body.get("vport"))
            except ValueError:
                vport = 0
            if not 1 <= vport <= 65535:
                raise BadRequest(
                    "The virtual port must be an acceptable value and must be available.",
                    description=description,
                )
            self._check_overlap(session, vip, vport, except_id=None, description=description)
            farm = HttpFarm(
                name=name,
                vip=vip,
                vport=vport,
                listener="http",
                running=True,
                interface=interface,
                **{f"error{code}": text for code, text in DEFAULT_ERRORS.items()},
            )
            session.add(farm)
        return farm, interface

    def _check_overlap(
        self, session: Session, vip: str, port: int, *, except_id: int | None, description: str
    ) -> None:
        for other in hrepo.http_farms_on_vip(session, vip, except_id=except_id):
            if other.running and other.vport == port:
                raise BadRequest(
                    f"The virtual IP and port {vip} {port} (tcp) overlap with the running farm "
                    f"'{other.name}'.",
                    description=description,
                )
        for l4 in repo.farms_on_vip(session, vip):
            if hrepo.l4_claims_port(repo.farm_spec(l4), vip, port):
                raise BadRequest(
                    f"The virtual IP and port {vip} {port} (tcp) overlap with the running farm "
                    f"'{l4.name}'.",
                    description=description,
                )

    def modify(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        description = f"Modify HTTP farm {name}"
        update = schema.parse(
            schema.HttpFarmUpdate, body, description=description, messages=schema.HTTP_FARM_MESSAGES
        )
        echo = {k: v for k, v in body.items() if k in schema.HttpFarmUpdate.model_fields}

        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=description)

        with self.write(description) as work:
            session = work.session
            farm = hrepo.get_http_farm(session, name)
            if farm is None:
                raise NotFound(f"The farm '{name}' does not exist.", description=description)
            if update.newfarmname is not None and update.newfarmname != farm.name:
                if farm.running:
                    raise bad("Cannot change the farm name while the farm is running")
                if not is_farm_name(update.newfarmname):
                    raise bad("Invalid newfarmname value.")
                if repo.get_farm(session, update.newfarmname) or hrepo.get_http_farm(
                    session, update.newfarmname
                ):
                    raise bad(f"The farm {update.newfarmname} already exists, try another name.")
                farm.name = update.newfarmname
            elif update.newfarmname is not None:
                raise bad("The new farm name is the current name.")
            for key in ("contimeout", "restimeout", "resurrectime", "reqtimeout"):
                value = getattr(update, key)
                if value is not None:
                    setattr(farm, key, value)
                    echo[key] = value
            _copy_given(update, farm, FARM_TEXT_FIELDS)
            if update.listener is not None:
                farm.listener = update.listener
                if farm.listener == "https" and not farm.certificates:
                    self._ensure_default_certificate(session)
                    farm.certificates.append(
                        HttpFarmCertificate(position=0, cert_name=DEFAULT_CERTIFICATE)
                    )
            tls_keys = ("ciphers", "cipherc", "certname")
            if farm.listener != "https":
                if any(key in body for key in tls_keys):
                    raise bad("To modify ciphers, chiperc or certname, listener must be https.")
            else:
                if update.ciphers == "ssloffloading":
                    raise bad("SSL offloading cipher profile not available.")
                if update.ciphers is not None:
                    farm.ciphers = update.ciphers
                if update.cipherc is not None:
                    if update.cipherc.strip() == "":
                        raise bad("Invalid cipherc, can't be blank.")
                    farm.cipherc = update.cipherc
                if farm.ciphers == "customsecurity" and not farm.cipherc:
                    raise bad("Invalid cipherc, can't be blank.")
                if update.certname is not None:
                    self._add_certificate(session, farm, update.certname, description)
                for proto in ("sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2"):
                    value = getattr(update, f"disable_{proto}")
                    if value is not None:
                        setattr(farm, f"disable_{proto}", value)
            vip, vport = farm.vip, farm.vport
            if update.vip is not None:
                canonical = as_ip(update.vip)
                if canonical is None or self.addresses.interface_of(canonical) is None:
                    raise bad("The vip IP must exist in some interface.")
                vip = canonical
                farm.interface = self.addresses.interface_of(canonical)
            if update.vport is not None:
                if not 1 <= update.vport <= 65535:
                    raise bad("Invalid port value.")
                vport = update.vport
                echo["vport"] = vport
            if (vip, vport) != (farm.vip, farm.vport) and farm.running:
                self._check_overlap(session, vip, vport, except_id=farm.id, description=description)
            farm.vip, farm.vport = vip, vport
            session.flush()
            if farm.listener == "https":
                echo["certlist"] = certlist(farm)
                echo["ciphers"] = farm.ciphers
                echo["cipherc"] = farm.cipherc
                for proto in ("sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2"):
                    echo[f"disable_{proto}"] = (
                        "true" if getattr(farm, f"disable_{proto}") else "false"
                    )
        return echo

    def delete(self, name: str) -> None:
        description = f"Delete farm {name}"
        with self.write(description) as work:
            farm = hrepo.get_http_farm(work.session, name)
            if farm is None:
                raise NotFound(
                    f"The farm {name} doesn't exist, try another name.", description=description
                )
            work.session.delete(farm)

    def action(self, name: str, action: Any) -> str:
        description = "Farm actions"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            if action is None:
                raise BadRequest("No action has been requested.", description=description)
            if action not in ("start", "stop", "restart"):
                raise BadRequest(
                    "Invalid action; the actions available are stop, start and restart",
                    description=description,
                )
            if action in ("start", "restart"):
                if self.addresses.interface_of(farm.vip) is None:
                    raise BadRequest(
                        f"The virtual ip {farm.vip} is not defined in any interface.",
                        description=description,
                    )
                self._check_overlap(
                    work.session, farm.vip, farm.vport, except_id=farm.id, description=description
                )
                farm.running = True
            else:
                farm.running = False
            work.session.flush()
            status = farm_status(farm, self.engine.down_servers())
        return status

    # -- services -------------------------------------------------------------------------

    def _farm(self, session: Session, name: str, description: str) -> HttpFarm:
        farm = hrepo.get_http_farm(session, name)
        if farm is None:
            raise NotFound(f"The farmname {name} does not exist.", description=description)
        return farm

    @staticmethod
    def _service(farm: HttpFarm, name: str, description: str, message: str) -> HttpService:
        for service in farm.services:
            if service.name == name:
                return service
        raise NotFound(message, description=description)

    def add_service(self, name: str, body: dict[str, Any]) -> str:
        description = "New service"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            raw = body.get("id")
            if raw is None or raw == "":
                raise BadRequest(
                    "Invalid service name, please insert a valid value.", description=description
                )
            if not isinstance(raw, str) or not schema.SERVICE_NAME.fullmatch(raw) or len(raw) > 255:
                raise BadRequest(
                    "Service name is not valid, only allowed numbers, letters and hyphens.",
                    description=description,
                )
            if any(s.name == raw for s in farm.services):
                raise BadRequest(
                    f"Error, the service {raw} already exists.", description=description
                )
            position = max((s.position for s in farm.services), default=-1) + 1
            farm.services.append(HttpService(name=raw, position=position))
        return raw

    def modify_service(self, name: str, service_name: str, body: dict[str, Any]) -> HttpService:
        description = "Modify service"
        update = schema.parse(
            schema.ServiceUpdate, body, description=description, messages=schema.SERVICE_MESSAGES
        )
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = self._service(
                farm, service_name, description, "Could not find the requested service."
            )
            _copy_given(update, service, SERVICE_FIELDS)
            if update.redirecttype:
                service.redirecttype = update.redirecttype
            elif update.redirecttype == "" and update.redirect:
                # As the original: a blank type is ignored, unless a redirect comes with it.
                raise BadRequest("Invalid redirecttype value.", description=description)
            # ttl means something only with persistence (clients send 0 without it).
            if update.ttl is not None and service.persistence:
                if update.ttl < 1:
                    raise BadRequest("Invalid ttl, must be numeric.", description=description)
                service.ttl = update.ttl
            if update.sessionid is not None:
                service.sessionid = update.sessionid
            if service.persistence in ("COOKIE", "HEADER", "URL") and not service.sessionid:
                raise BadRequest(
                    f"The persistence {service.persistence} needs a sessionid.",
                    description=description,
                )
            work.session.flush()
        return service

    def delete_service(self, name: str, service_name: str) -> None:
        description = "Delete service"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = next((s for s in farm.services if s.name == service_name), None)
            if service is None:
                raise BadRequest(
                    "Invalid service name, please insert a valid value.", description=description
                )
            farm.services.remove(service)

    # -- per-service farmguardian (PUT /farms/NAME/fg with `service`, reference §7.4) ------

    def modify_farmguardian(self, name: str, body: dict[str, Any]) -> HttpService:
        """Set a service's health check; HAProxy runs it (a seamless reload applies it)."""
        description = FG_DESCRIPTION
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            wanted = body.get("service")
            service = self._service(
                farm,
                wanted if isinstance(wanted, str) else "",
                description,
                "Invalid service name, please insert a valid value.",
            )
            fields = {k: v for k, v in body.items() if k != "service"}
            changes = FarmGuardianUpdate.parse(fields, description=description).changes()
            for key, value in changes.items():
                setattr(service, key, value)
            if service.fg_enabled:
                try:
                    service_check(service, self.plugin_dir)
                except CheckError as exc:
                    raise BadRequest(f"Invalid fgscript, {exc}.", description=description) from None
            work.session.flush()
        return service

    # -- service backends -----------------------------------------------------------------

    def add_backend(
        self, name: str, service_name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        description = "New service backend"
        values = schema.parse(
            schema.ServiceBackendCreate,
            body,
            description=description,
            messages=schema.BACKEND_ADD_MESSAGES,
        )

        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=description)

        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = self._service(
                farm,
                service_name,
                description,
                "Invalid service name, please insert a valid value.",
            )
            ip = as_ip(values.ip)
            if ip is None:
                raise bad(schema.BACKEND_ADD_MESSAGES["ip"])
            if values.port is None or not 1 <= values.port <= 65535:
                raise bad(schema.BACKEND_ADD_MESSAGES["port"])
            if values.weight is not None and not 1 <= values.weight <= 9:
                raise bad(schema.BACKEND_ADD_MESSAGES["weight"])
            if values.timeout is not None and values.timeout == 0:
                raise bad(schema.BACKEND_ADD_MESSAGES["timeout"])
            position = len(service.backends)
            service.backends.append(
                HttpBackend(
                    position=position,
                    ip=ip,
                    port=values.port,
                    weight=values.weight or 1,
                    timeout=values.timeout,
                    maintenance="",
                )
            )
            work.session.flush()
            params = {
                "id": position,
                "ip": ip,
                "port": values.port,
                "weight": values.weight or 1,
                "timeout": values.timeout,
            }
            status = farm_status(farm, self.engine.down_servers())
        return params, status

    def _backend(
        self, service: HttpService, backend_id: int, description: str, message: str
    ) -> HttpBackend:
        if 0 <= backend_id < len(service.backends):
            return service.backends[backend_id]
        raise NotFound(message, description=description)

    def modify_backend(
        self, name: str, service_name: str, backend_id: int, body: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        description = "Modify service backend"
        values = schema.parse(
            schema.ServiceBackendUpdate,
            body,
            description=description,
            messages=schema.BACKEND_MODIFY_MESSAGES,
        )
        echo = {k: v for k, v in body.items() if k in ("ip", "port", "weight", "timeout")}

        def bad(key: str) -> BadRequest:
            return BadRequest(schema.BACKEND_MODIFY_MESSAGES[key], description=description)

        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = self._service(
                farm, service_name, description, "Could not find the requested service."
            )
            backend = self._backend(
                service, backend_id, description, "Could not find a service backend with such id."
            )
            if "ip" in body:
                ip = as_ip(values.ip)
                if ip is None:
                    raise bad("ip")
                backend.ip = ip
            if "port" in body:
                if values.port is None or not 1 <= values.port <= 65535:
                    raise bad("port")
                backend.port = values.port
                echo["port"] = values.port
            # null: unchanged (clients send whole objects back, with their unset fields)
            if body.get("weight") is not None:
                if values.weight is None or not 1 <= values.weight <= 9:
                    raise bad("weight")
                backend.weight = values.weight
                echo["weight"] = values.weight
            if "timeout" in body:
                if body["timeout"] in ("", None):  # no timeout of its own: the farm's
                    backend.timeout = None
                elif values.timeout is None or values.timeout == 0:
                    raise bad("timeout")
                else:
                    backend.timeout = values.timeout
                    echo["timeout"] = values.timeout
            work.session.flush()
            status = farm_status(farm, self.engine.down_servers())
        return echo, status

    def delete_backend(self, name: str, service_name: str, backend_id: int) -> str:
        description = "Delete service backend"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = self._service(
                farm, service_name, description, "Could not find the requested service."
            )
            if not 0 <= backend_id < len(service.backends):
                raise BadRequest("Could not find the requested backend.", description=description)
            service.backends.pop(backend_id)
            for position, backend in enumerate(service.backends):
                backend.position = position  # ids are positional: they shift, as in Zevenet
            work.session.flush()
            status = farm_status(farm, self.engine.down_servers())
        return status

    def maintenance(
        self, name: str, service_name: str, backend_id: int, body: dict[str, Any]
    ) -> tuple[str, str]:
        description = "Set service backend status"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            service = self._service(
                farm, service_name, description, "Could not find the requested service."
            )
            backend = self._backend(
                service, backend_id, description, "Could not find a backend with such id."
            )
            action = body.get("action")
            if action is None:
                raise BadRequest("No maintenance action was requested.", description=description)
            if action == "maintenance":
                mode = body.get("mode", "drain")
                if mode not in ("drain", "cut"):
                    raise BadRequest(
                        "Error, the maintenance mode is not a valid value.", description=description
                    )
                backend.maintenance = mode
            elif action == "up":
                backend.maintenance = ""
            else:
                raise BadRequest(
                    "Invalid action; the possible actions are up and maintenance",
                    description=description,
                )
            work.session.flush()
            status = farm_status(farm, self.engine.down_servers())
        return str(action), status

    # -- certificates ---------------------------------------------------------------------

    def _ensure_default_certificate(self, session: Session) -> None:
        if hrepo.get_certificate(session, DEFAULT_CERTIFICATE) is None:
            session.add(
                Certificate(
                    name=DEFAULT_CERTIFICATE,
                    pem=_self_signed_pem(),
                    created_at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
                )
            )
            session.flush()

    def _add_certificate(
        self, session: Session, farm: HttpFarm, file: str, description: str
    ) -> None:
        if not isinstance(file, str) or hrepo.get_certificate(session, file) is None:
            raise BadRequest(
                "Invalid certificate name, please insert a valid value.", description=description
            )
        if any(c.cert_name == file for c in farm.certificates):
            raise BadRequest(
                f"The certificate {file} is already in farm {farm.name}.", description=description
            )
        position = max((c.position for c in farm.certificates), default=-1) + 1
        farm.certificates.append(HttpFarmCertificate(position=position, cert_name=file))

    def add_farm_certificate(self, name: str, body: dict[str, Any]) -> str:
        description = "Add certificate"
        values = schema.parse(
            schema.FarmCertificateAdd,
            body,
            description=description,
            messages={"file": "Invalid certificate name, please insert a valid value."},
        )
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            if farm.listener != "https":
                raise BadRequest(
                    f"The farm {name} has not a HTTPS listener.", description=description
                )
            # The default certificate steps aside once the operator brings their own.
            if [c.cert_name for c in farm.certificates] == [DEFAULT_CERTIFICATE]:
                farm.certificates.clear()
                work.session.flush()
            self._add_certificate(work.session, farm, values.file, description)
        return values.file

    def delete_farm_certificate(self, name: str, file: str) -> None:
        description = "Delete farm certificate"
        with self.write(description) as work:
            farm = self._farm(work.session, name, description)
            link = next((c for c in farm.certificates if c.cert_name == file), None)
            if link is None:
                raise NotFound("Certificate not found.", description=description)
            if len(farm.certificates) == 1:
                raise BadRequest(
                    "The certificate cannot be removed: an https farm needs at least one.",
                    description=description,
                )
            farm.certificates.remove(link)

    def upload_certificate(self, file: str, pem: bytes) -> None:
        description = "Upload PEM certificate"
        if not schema.CERT_FILE.fullmatch(file):
            raise BadRequest("Invalid certificate file name", description=description)
        text = validate_pem(pem, description=description)
        with self.write(description) as work:
            if hrepo.get_certificate(work.session, file) is not None:
                raise BadRequest("Certificate file name already exists", description=description)
            work.session.add(
                Certificate(
                    name=file,
                    pem=text,
                    created_at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
                )
            )

    def certificates(self) -> builtins.list[Certificate]:
        with self.uow.read() as session:
            return hrepo.list_certificates(session)

    def delete_certificate(self, file: str) -> None:
        description = "Delete certificate"
        with self.write(description) as work:
            cert = hrepo.get_certificate(work.session, file)
            if cert is None:
                raise NotFound("Certificate not found.", description=description)
            if hrepo.certificate_users(work.session, file):
                raise BadRequest(
                    "File can't be deleted because it's in use by a farm", description=description
                )
            work.session.delete(cert)


FARM_TEXT_FIELDS = ("rewritelocation", "httpverb", "error414", "error500", "error501", "error503")
SERVICE_FIELDS = ("vhost", "urlp", "redirect", "persistence", "leastresp", "httpsb")


def _copy_given(update: object, target: object, keys: tuple[str, ...]) -> None:
    """The fields the request set (not None) onto the row."""
    for key in keys:
        value = getattr(update, key)
        if value is not None:
            setattr(target, key, value)


def certlist(farm: HttpFarm) -> list[dict[str, Any]]:
    return [{"file": c.cert_name, "id": i + 1} for i, c in enumerate(farm.certificates)]


def validate_pem(pem: bytes, *, description: str) -> str:
    """A PEM with a certificate (chain) and the private key of its first certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    message = (
        "The certificate is not valid: a PEM file with a certificate and its private key "
        "is expected."
    )
    try:
        text = pem.decode("ascii")
        certs = x509.load_pem_x509_certificates(pem)
        block = _KEY_BLOCK.search(text)
        if block is None:
            raise ValueError("no private key")
        key = serialization.load_pem_private_key(block.group(0).encode(), password=None)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise BadRequest(message, description=description) from None
    if not certs or not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise BadRequest(message, description=description)
    if certs[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise BadRequest(
            "The certificate is not valid: the private key does not belong to the certificate.",
            description=description,
        )
    return text


def certificate_info(cert: Certificate) -> dict[str, str]:
    """GET /certificates item (the Go client's shape)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    first = x509.load_pem_x509_certificates(cert.pem.encode())[0]

    def cn(name: x509.Name) -> str:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else ""

    fmt = "%b %d %H:%M:%S %Y GMT"
    return {
        "file": cert.name,
        "type": "Certificate",
        "CN": cn(first.subject),
        "issuer": cn(first.issuer),
        "creation": first.not_valid_before_utc.strftime(fmt),
        "expiration": first.not_valid_after_utc.strftime(fmt),
    }


def _self_signed_pem() -> str:
    cert_pem, key_pem = self_signed("kernlb", valid_from=datetime.timedelta(days=1))
    return (cert_pem + key_pem).decode()
