"""Builders and expectations for the API tests: plain functions with keyword defaults."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

with warnings.catch_warnings():
    # Starlette would rather use httpx2; the httpx the project pins still works.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient as StarletteTestClient

from .transport import OneCallTransport


class TestClient(StarletteTestClient):
    """Starlette's TestClient, with one crossing into the app's thread per request
    (`transport.py`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = OneCallTransport(self._transport)


JSON = dict[str, Any]
# The `serve` fixture: start an app (lifespan included) and yield a client for it.
Serve = Callable[..., AbstractContextManager[TestClient]]

BASE = "/zapi/v3.1/zapi.cgi"
BASE_V3 = "/zapi/v3/zapi.cgi"
BASE_V40 = "/zapi/v4.0/zapi.cgi"
DOCUMENTATION = "https://www.zevenet.com/zapidoc_ce_v4.0/"
HELP = "No parameter has been sent. Please, try with:"
KEY = "testkey"

VIP = "198.18.0.10"
VIP_ALIAS = "198.18.0.11"  # on the virtual interface eth0:vip1
VIP6 = "2001:2::10"
NOT_LOCAL = "203.0.113.10"  # a valid address that no interface of the host holds
INTERFACES = {VIP: "eth0", VIP_ALIAS: "eth0:vip1", VIP6: "eth0"}

BACKEND_IP = "192.0.2.1"
BACKEND_IP6 = "2001:db8::1"

__all__ = ["TestClient"]


def url(path: str, *, base: str = BASE) -> str:
    return base + path


# -- expectations --------------------------------------------------------------------------


def expect(response: httpx.Response, status: int, body: JSON) -> None:
    """Status, the whole JSON body (types included) and the exact Content-Type."""
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"


def error(description: str, message: str) -> JSON:
    return {"description": description, "error": "true", "message": message}


def check_zapi_response(response: httpx.Response) -> None:
    """Holds for every answer (zapi31.md §1 "Every response"); installed as a client hook."""
    response.read()
    assert response.headers.get("content-type") == "application/json", response.headers
    if response.request.method == "HEAD":
        return
    body = response.json()
    assert isinstance(body, dict), body
    assert "detail" not in body, body
    assert response.status_code != 422, body
    if response.request.url.path.startswith(BASE_V40):
        check_zapi40_error(response.status_code, body)
        return
    if response.status_code >= 400 and response.status_code not in (401, 415):
        assert set(body) == {"description", "error", "message"}, body
        assert body["error"] == "true", body
        assert isinstance(body["description"], str), body
        assert isinstance(body["message"], str) and body["message"], body


def check_zapi40_error(status: int, body: JSON) -> None:
    """ZAPI 4.0 errors (zapi40-l4.md §1.1): the envelope plus `documentation`; the help answer,
    the malformed-JSON answer, 401 and 415 are written without it."""
    if status < 400 or status in (401, 415):
        return
    if body.get("message") == HELP:
        assert set(body) == {"description", "message", "params"}, body
        assert isinstance(body["params"], list) and body["params"], body
    elif body.get("message") == "The body does not look a valid JSON":
        assert body == {"error": "true", "message": "The body does not look a valid JSON"}
    else:
        assert set(body) == {"description", "documentation", "error", "message"}, body
        assert body["error"] == "true" and body["documentation"] == DOCUMENTATION, body
        assert isinstance(body["message"], str) and body["message"], body


# -- expected bodies -----------------------------------------------------------------------


def farm_params(
    *,
    status: str = "critical",
    vip: str = VIP,
    vport: int | str = 80,
    algorithm: str = "weight",
    nattype: str = "nat",
    persistence: str = "",
    protocol: str = "tcp",
    ttl: int = 60,
) -> JSON:
    """`params` of GET /farms/NAME for an l4xnat farm (defaults: a fresh farm on VIP:80)."""
    return {
        "algorithm": algorithm,
        "fgenabled": "false",
        "fglog": "false",
        "fgscript": "",
        "fgtimecheck": 5,
        "listener": "l4xnat",
        "nattype": nattype,
        "persistence": persistence,
        "protocol": protocol,
        "status": status,
        "ttl": ttl,
        "vip": vip,
        "vport": vport,
    }


def backend(
    backend_id: int,
    *,
    ip: str = BACKEND_IP,
    port: int | None = 8080,
    weight: int = 1,
    priority: int = 1,
    max_conns: int = 0,
    status: str = "up",
) -> JSON:
    """One item of `backends[]` in GET /farms/NAME and GET /farms/NAME/backends."""
    return {
        "id": backend_id,
        "ip": ip,
        "max_conns": max_conns,
        "port": port,
        "priority": priority,
        "status": status,
        "weight": weight,
    }


def farm_detail(name: str = "web", *, backends: list[JSON] | None = None, **params: Any) -> JSON:
    return {
        "backends": backends or [],
        "description": f"List farm {name}",
        "params": farm_params(**params),
    }


def list_item(
    name: str = "web", *, status: str = "critical", vip: str = VIP, vport: str = "80"
) -> JSON:
    """One item of GET /farms: `vport` is always a string there."""
    return {"farmname": name, "profile": "l4xnat", "status": status, "vip": vip, "vport": vport}


# -- requests ------------------------------------------------------------------------------


def farm_body(
    *, name: Any = "web", profile: Any = "l4xnat", vip: Any = VIP, vport: Any = 80
) -> JSON:
    return {"farmname": name, "profile": profile, "vip": vip, "vport": vport}


def create_farm(
    client: TestClient,
    *,
    name: str = "web",
    profile: str = "l4xnat",
    vip: str = VIP,
    vport: int | str = 80,
) -> JSON:
    response = client.post(
        url("/farms"), json=farm_body(name=name, profile=profile, vip=vip, vport=vport)
    )
    assert response.status_code == 201, response.text
    body: JSON = response.json()
    return body


def modify_farm(client: TestClient, name: str = "web", **fields: Any) -> JSON:
    response = client.put(url(f"/farms/{name}"), json=fields)
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


def farm_action(client: TestClient, name: str, action: str) -> JSON:
    response = client.put(url(f"/farms/{name}/actions"), json={"action": action})
    assert response.status_code == 200, response.text
    params: JSON = response.json()["params"]
    return params


def get_farm(client: TestClient, name: str = "web") -> JSON:
    response = client.get(url(f"/farms/{name}"))
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


def list_farms(client: TestClient) -> list[JSON]:
    response = client.get(url("/farms"))
    assert response.status_code == 200, response.text
    params: list[JSON] = response.json()["params"]
    return params


def snapshot(client: TestClient) -> JSON:
    """Everything a client can read back about the farms."""
    farms = list_farms(client)
    return {"list": farms, "farms": {f["farmname"]: get_farm(client, f["farmname"]) for f in farms}}


def add_backend(
    client: TestClient,
    farm: str = "web",
    *,
    ip: str = BACKEND_IP,
    port: int | str | None = 8080,
    weight: int | str | None = None,
    priority: int | str | None = None,
    max_conns: int | str | None = None,
) -> int:
    """Add a backend (None leaves a field out of the body); returns its id."""
    fields = {"ip": ip, "port": port, "weight": weight, "priority": priority}
    fields["max_conns"] = max_conns
    body = {key: value for key, value in fields.items() if value is not None}
    response = client.post(url(f"/farms/{farm}/backends"), json=body)
    assert response.status_code == 201, response.text
    backend_id: int = response.json()["params"]["id"]
    return backend_id


def set_maintenance(
    client: TestClient,
    farm: str,
    backend_id: int,
    *,
    action: str = "maintenance",
    mode: str | None = None,
) -> httpx.Response:
    body = {"action": action} if mode is None else {"action": action, "mode": mode}
    return client.put(url(f"/farms/{farm}/backends/{backend_id}/maintenance"), json=body)


# `pytestmark = pytest.mark.parametrize("database", BOTH_DATABASES, indirect=True)`: the
# module's tests run on SQLite and on PostgreSQL (tests/api/conftest.py `database`).
BOTH_DATABASES = ("sqlite", "postgresql")
