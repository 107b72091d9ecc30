"""http/https farms (HAProxy): services, service backends, certificates, stats.

The farm-level routes (`/farms`, `/farms/NAME`, actions, the l4-only backend routes, stats)
live with the l4xnat ones and hand http farms over to the functions here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import BodyDep
from app.api.docs import documented, response_body
from app.api.http import ZapiResponse, succeeded
from app.db.models import HttpBackend, HttpFarm, HttpService
from app.errors import BadRequest, UnsupportedMediaType
from app.haproxy.config import backend_name, server_name
from app.schemas import requests
from app.schemas.fg import fg_v31_params
from app.services.http_farms import (
    HttpFarmService,
    HttpFarmView,
    backend_status,
    certificate_info,
    certlist,
)

router = APIRouter(tags=["http farms"], default_response_class=ZapiResponse)
SERVICE = "/farms/{name}/services/{service}"
ERRORS = (400, 404)
PEM_TYPES = ("application/x-pem-file", "text/plain", "application/octet-stream")


def http_farm_service(request: Request) -> HttpFarmService:
    service: HttpFarmService = request.app.state.http_farms
    return service


HttpFarmsDep = Annotated[HttpFarmService, Depends(http_farm_service)]


# -- bodies --------------------------------------------------------------------------------


def http_backend_item(backend: HttpBackend, position: int, status: str) -> dict[str, Any]:
    return {
        "id": position,
        "ip": backend.ip,
        "port": backend.port,
        "timeout": backend.timeout,
        "weight": backend.weight,
        "status": status,
    }


def http_service_item(service: HttpService, down: frozenset[int]) -> dict[str, Any]:
    return {
        "id": service.name,
        "vhost": service.vhost,
        "urlp": service.urlp,
        "redirect": service.redirect,
        "redirecttype": service.redirecttype,
        "persistence": service.persistence,
        "ttl": service.ttl,
        "sessionid": service.sessionid,
        "leastresp": "true" if service.leastresp else "false",
        "httpsb": "true" if service.httpsb else "false",
        **fg_v31_params(service),
        "backends": [
            http_backend_item(b, i, backend_status(b, down)) for i, b in enumerate(service.backends)
        ],
    }


def http_farm_params(view: HttpFarmView) -> dict[str, Any]:
    farm: HttpFarm = view.farm
    params: dict[str, Any] = {
        "status": view.status,
        "vip": farm.vip,
        "vport": farm.vport,
        "listener": farm.listener,
        "contimeout": farm.contimeout,
        "restimeout": farm.restimeout,
        "resurrectime": farm.resurrectime,
        "reqtimeout": farm.reqtimeout,
        "rewritelocation": farm.rewritelocation,
        "httpverb": farm.httpverb,
        "error414": farm.error414,
        "error500": farm.error500,
        "error501": farm.error501,
        "error503": farm.error503,
    }
    if farm.listener == "https":
        params["certlist"] = certlist(farm)
        params["ciphers"] = farm.ciphers
        params["cipherc"] = farm.cipherc
        for proto in ("sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2"):
            params[f"disable_{proto}"] = "true" if getattr(farm, f"disable_{proto}") else "false"
    return params


def http_farm_detail(view: HttpFarmView) -> dict[str, Any]:
    return {
        "description": f"List farm {view.farm.name}",
        "params": http_farm_params(view),
        "services": [http_service_item(s, view.down) for s in view.farm.services],
    }


def http_farm_summary(view: HttpFarmView) -> dict[str, Any]:
    return {
        "description": f"List farm {view.farm.name}",
        "params": http_farm_params(view),
        "services": [{"id": s.name} for s in view.farm.services],
    }


def http_farm_stats(
    farms: HttpFarmService, name: str, service: str | None = None
) -> dict[str, Any]:
    """Per-backend sessions from HAProxy's stats socket; persistence sessions from its
    stick tables."""
    view = farms.get(name, description="Get farm stats")
    services = view.farm.services
    if service is not None:
        services = [s for s in services if s.name == service]
        if not services:
            raise BadRequest(f"The service {service} does not exist.", description="Get farm stats")
    rows = {(r.get("pxname"), r.get("svname")): r for r in farms.engine.show_stat()}
    backends = []
    sessions = []
    for svc in services:
        names = {}
        for position, backend in enumerate(svc.backends):
            row = rows.get((backend_name(svc.id), server_name(backend.id)), {})
            running = view.farm.running
            backends.append(
                {
                    "id": position,
                    "ip": backend.ip,
                    "port": backend.port,
                    "status": view.backend_status(backend) if running else "down",
                    "established": int(row.get("scur") or 0) if running else 0,
                    "pending": int(row.get("qcur") or 0) if running else 0,
                    "service": svc.name,
                }
            )
            names[server_name(backend.id)] = position
        if svc.persistence and view.farm.running:
            for index, entry in enumerate(farms.engine.show_table(backend_name(svc.id))):
                key = entry.get("key", "")
                sessions.append(
                    {
                        "client": index,
                        "id": names.get(entry.get("server_key", ""), entry.get("server_id", "")),
                        "session": key,
                        "service": svc.name,
                    }
                )
    return {"description": "Get farm stats", "backends": backends, "sessions": sessions}


def _backend_changed(
    description: str, params: dict[str, Any], message: str, status: str
) -> dict[str, Any]:
    return {"description": description, "params": params, "message": message, "status": status}


# -- services ------------------------------------------------------------------------------


@router.post(
    "/farms/{name}/services",
    operation_id="createService",
    status_code=201,
    **documented("ServiceCreatedResponse", status=201, body="ServiceCreateBody", errors=ERRORS),
)
def create_service(name: str, body: BodyDep, farms: HttpFarmsDep) -> ZapiResponse:
    """Add a service to an http farm (it is tried after the existing ones)."""
    service = farms.add_service(name, body)
    return ZapiResponse({"description": "New service", "params": {"id": service}}, 201)


@router.get(SERVICE, operation_id="getService", **documented("ServiceResponse", errors=ERRORS))
def get_service(name: str, service: str, farms: HttpFarmsDep) -> dict[str, Any]:
    """Show a service with its backends."""
    _farm, found = farms.service(name, service)
    down = farms.engine.down_servers()
    return {"description": "Get services of a farm", "params": http_service_item(found, down)}


@router.put(
    SERVICE,
    operation_id="modifyService",
    **documented("ServiceResponse", body="ServiceUpdateBody", errors=ERRORS),
)
def modify_service(name: str, service: str, body: BodyDep, farms: HttpFarmsDep) -> dict[str, Any]:
    """Modify a service (vhost, urlp, redirect, persistence...): every field applies, or none."""
    changed = farms.modify_service(name, service, body)
    return {
        "description": f"Modify service {service} in farm {name}",
        "params": http_service_item(changed, farms.engine.down_servers()),
    }


@router.delete(
    SERVICE, operation_id="deleteService", **documented("DeletedResponse", errors=ERRORS)
)
def delete_service(name: str, service: str, farms: HttpFarmsDep) -> dict[str, Any]:
    """Delete a service and its backends."""
    farms.delete_service(name, service)
    return succeeded("Delete service", f"The service {service} in farm {name} has been deleted.")


# -- service backends ----------------------------------------------------------------------


@router.get(
    SERVICE + "/backends",
    operation_id="listServiceBackends",
    **documented("ServiceBackendListResponse", errors=ERRORS),
)
def list_service_backends(name: str, service: str, farms: HttpFarmsDep) -> dict[str, Any]:
    """List a service's backends."""
    _farm, found = farms.service(name, service)
    down = farms.engine.down_servers()
    return {
        "description": "List service backends",
        "params": [
            http_backend_item(b, i, backend_status(b, down)) for i, b in enumerate(found.backends)
        ],
    }


@router.post(
    SERVICE + "/backends",
    operation_id="createServiceBackend",
    status_code=201,
    **documented(
        "ServiceBackendChangedResponse", status=201, body="ServiceBackendBody", errors=ERRORS
    ),
)
def create_service_backend(
    name: str, service: str, body: BodyDep, farms: HttpFarmsDep
) -> ZapiResponse:
    """Add a backend to a service."""
    params, status = farms.add_backend(name, service, body)
    message = "Added backend to service successfully"
    return ZapiResponse(_backend_changed("New service backend", params, message, status), 201)


@router.put(
    SERVICE + "/backends/{backend_id:int}",
    operation_id="modifyServiceBackend",
    **documented("ServiceBackendChangedResponse", body="ServiceBackendBody", errors=ERRORS),
)
def modify_service_backend(
    name: str, service: str, backend_id: int, body: BodyDep, farms: HttpFarmsDep
) -> dict[str, Any]:
    """Modify a service backend (address and weight changes apply without a reload)."""
    echo, status = farms.modify_backend(name, service, backend_id, body)
    return _backend_changed("Modify service backend", echo, "Backend modified", status)


@router.delete(
    SERVICE + "/backends/{backend_id:int}",
    operation_id="deleteServiceBackend",
    **documented("DeletedResponse", errors=ERRORS),
)
def delete_service_backend(
    name: str, service: str, backend_id: int, farms: HttpFarmsDep
) -> dict[str, Any]:
    """Delete a service backend (the ids after it shift down, as in Zevenet)."""
    status = farms.delete_backend(name, service, backend_id)
    return succeeded("Delete service backend", "Backend removed", status=status)


@router.put(
    SERVICE + "/backends/{backend_id:int}/maintenance",
    operation_id="setServiceBackendMaintenance",
    **documented("MaintenanceResponse", body=requests.MaintenanceBody, errors=ERRORS),
)
def set_service_backend_maintenance(
    name: str, service: str, backend_id: int, body: BodyDep, farms: HttpFarmsDep
) -> dict[str, Any]:
    """Drain (sticky sessions stay), cut (sessions closed) or bring back a service backend."""
    action, status = farms.maintenance(name, service, backend_id, body)
    return {
        "description": "Set service backend status",
        "params": {"action": action, "farm": {"status": status}},
    }


# -- certificates --------------------------------------------------------------------------


@router.get(
    "/certificates",
    operation_id="listCertificates",
    **documented("CertificateListResponse", errors=()),
)
def list_certificates(farms: HttpFarmsDep) -> dict[str, Any]:
    """List the uploaded certificates."""
    return {
        "description": "List certificates",
        "params": [certificate_info(c) for c in farms.certificates()],
    }


def _pem_upload_documented() -> dict[str, Any]:
    spec = documented("DeletedResponse", errors=(400,))
    spec["responses"][415] = response_body(
        "UnsupportedMediaBody", "Content-Type is not application/x-pem-file (or text/plain)"
    )
    pem = {"schema": {"type": "string", "format": "binary"}}
    spec["openapi_extra"] = {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": pem},
        }
    }
    return spec


@router.post("/certificates/{file}", operation_id="uploadCertificate", **_pem_upload_documented())
async def upload_certificate(file: str, request: Request, farms: HttpFarmsDep) -> dict[str, Any]:
    """Upload a PEM (certificate chain and private key), body `application/x-pem-file`."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in PEM_TYPES:
        raise UnsupportedMediaType()
    farms.upload_certificate(file, await request.body())
    return succeeded("Upload PEM certificate", "Certificate uploaded")


@router.delete(
    "/certificates/{file}",
    operation_id="deleteCertificate",
    **documented("DeletedResponse", errors=ERRORS),
)
def delete_certificate(file: str, farms: HttpFarmsDep) -> dict[str, Any]:
    """Delete a certificate no farm uses."""
    farms.delete_certificate(file)
    return succeeded("Delete certificate", f"The Certificate {file} has been deleted.")


@router.post(
    "/farms/{name}/certificates",
    operation_id="addFarmCertificate",
    **documented("DeletedResponse", body="FarmCertificateBody", errors=ERRORS),
)
def add_farm_certificate(name: str, body: BodyDep, farms: HttpFarmsDep) -> dict[str, Any]:
    """Add a certificate to an https farm's SNI list (applied at once, by a seamless reload)."""
    file = farms.add_farm_certificate(name, body)
    message = f"The certificate {file} has been added to the SNI list of farm {name}."
    return succeeded("Add certificate", message)


@router.delete(
    "/farms/{name}/certificates/{file}",
    operation_id="deleteFarmCertificate",
    **documented("DeletedResponse", errors=ERRORS),
)
def delete_farm_certificate(name: str, file: str, farms: HttpFarmsDep) -> dict[str, Any]:
    """Remove a certificate from an https farm's SNI list."""
    farms.delete_farm_certificate(name, file)
    return succeeded("Delete farm certificate", f"The Certificate {file} has been deleted.")
