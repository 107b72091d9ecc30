"""Every enumeration of a v3.1 request body in openapi/openapi.json is what the API accepts.

The test walks the checked-in document: for each request-body field with an `enum`, every
listed value is sent to its endpoint and accepted, and a value outside the list is refused
with ZAPI's message.  A new enumerated field fails `test_every_enumerated_field_is_walked`
until it gets a line in `ENDPOINTS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .builders import BASE, JSON, TestClient, add_backend, create_farm, error, url

SPEC = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
OUTSIDE = ("not-a-value", 7)  # a string no enumeration holds, and a number


def request_schemas(spec: JSON) -> dict[str, tuple[str, str]]:
    """Request-body schema name -> (method, path template) of a v3.1 operation that takes it.

    (The 4.0 bodies are checked by their own parameter checker, app/schemas/v40.py.)"""
    found: dict[str, tuple[str, str]] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith(BASE):
            continue
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                found.setdefault(body["schema"]["$ref"].rsplit("/", 1)[1], (method, path))
    return found


def enum_of(schema: JSON) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    for option in schema.get("anyOf", ()):
        values = enum_of(option)
        if values is not None:
            return values
    return None


def enumerated_fields(spec: JSON) -> dict[tuple[str, str], list[Any]]:
    fields = {}
    for name in request_schemas(spec):
        for prop, schema in spec["components"]["schemas"][name].get("properties", {}).items():
            values = enum_of(schema)
            if values is not None:
                fields[(name, prop)] = values
    return fields


def no_setup(client: TestClient) -> None:
    pass


def farm(client: TestClient) -> None:
    create_farm(client)


def farm_with_backend(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)


@dataclass(frozen=True)
class Endpoint:
    """Where a field is sent, with what else, and how a bad value is refused."""

    path: str
    description: str
    message: str
    setup: Callable[[TestClient], None] = farm
    base: JSON = field(default_factory=dict)
    method: str = "put"
    status: int = 400
    named: bool = False  # each request creates an object: give it a name of its own


def virtual_interface(client: TestClient) -> None:
    body = {"name": "eth0:vip9", "ip": "198.18.4.30"}
    assert client.post(url("/interfaces/virtual"), json=body).status_code == 201


def blacklist(client: TestClient) -> None:
    assert client.post(url("/ipds/blacklists"), json={"name": "bad"}).status_code == 201


FARM = "/farms/web"
FG_BASE = {"fgscript": "check_tcp -H HOST -p PORT", "fgtimecheck": 5}
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("FarmUpdate", "algorithm"): Endpoint(FARM, "Modify L4xNAT farm 'web'", "Invalid algorithm."),
    ("FarmUpdate", "persistence"): Endpoint(
        FARM, "Modify L4xNAT farm 'web'", "Invalid persistence."
    ),
    ("FarmUpdate", "protocol"): Endpoint(FARM, "Modify L4xNAT farm 'web'", "Invalid protocol."),
    ("FarmUpdate", "nattype"): Endpoint(FARM, "Modify L4xNAT farm 'web'", "Invalid nattype."),
    ("FarmActionBody", "action"): Endpoint(
        f"{FARM}/actions",
        "Farm actions",
        "Invalid action; the actions available are stop, start and restart",
    ),
    ("MaintenanceBody", "action"): Endpoint(
        f"{FARM}/backends/0/maintenance",
        "Set backend status",
        "Invalid action; the possible actions are up and maintenance",
        setup=farm_with_backend,
    ),
    ("MaintenanceBody", "mode"): Endpoint(
        f"{FARM}/backends/0/maintenance",
        "Set backend status",
        "Error, the maintenance mode is not a valid value.",
        setup=farm_with_backend,
        base={"action": "maintenance"},
    ),
    ("FarmGuardianUpdate", "service"): Endpoint(
        f"{FARM}/fg",
        "Modify farm guardian",
        "L4xNAT profile farms do not have services.",
        base=FG_BASE,
    ),
    ("FarmGuardianUpdate", "fgenabled"): Endpoint(
        f"{FARM}/fg",
        "Modify farm guardian",
        "Invalid format, please insert a valid fgenabled.",
        base=FG_BASE,
    ),
    ("FarmGuardianUpdate", "fglog"): Endpoint(
        f"{FARM}/fg",
        "Modify farm guardian",
        "Invalid format, please insert a valid fglog.",
        base=FG_BASE,
    ),
    ("FarmGuardianUpdate", "fgcutconns"): Endpoint(
        f"{FARM}/fg",
        "Modify farm guardian",
        "Invalid format, please insert a valid fgcutconns.",
        base=FG_BASE,
    ),
    ("VirtualInterfaceAction", "action"): Endpoint(
        "/interfaces/virtual/eth0:vip9/actions",
        "Action on virtual interface",
        "Action accepted values are: up or down",
        setup=virtual_interface,
        method="post",
    ),
    ("ListCreate", "policy"): Endpoint(
        "/ipds/blacklists",
        "Create a blacklist rule.",
        "The parameter policy has not a valid value.",
        setup=no_setup,
        method="post",
        named=True,
    ),
    ("ListUpdate", "policy"): Endpoint(
        "/ipds/blacklists/bad",
        "Modify list bad",
        "The parameter policy has not a valid value.",
        setup=blacklist,
    ),
    ("ZapiUserUpdate", "status"): Endpoint(
        "/system/users/zapi",
        "Setting Zapi user configuration",
        "Error, character incorrect in status zapi.",
        setup=no_setup,
        method="post",
    ),
    ("ZapiUserUpdate", "randomkey"): Endpoint(
        "/system/users/zapi",
        "Setting Zapi user configuration",
        'Invalid randomkey: it must be "true" or "false".',
        setup=no_setup,
        method="post",
    ),
}
FIELDS = enumerated_fields(SPEC)


def test_every_enumerated_field_is_walked() -> None:
    assert sorted(FIELDS) == sorted(ENDPOINTS)


def test_farm_update_offers_every_nattype() -> None:
    assert FIELDS[("FarmUpdate", "nattype")] == ["nat", "dnat", "dsr", "stateless_dnat"]


def send(client: TestClient, endpoint: Endpoint, name: str, value: Any) -> Any:
    body = {**endpoint.base, name: value}
    if endpoint.named:
        body["name"] = f"n{abs(hash((name, str(value))))}"
    return client.request(endpoint.method.upper(), url(endpoint.path), json=body)


@pytest.mark.parametrize(("schema", "name"), sorted(ENDPOINTS))
def test_each_listed_value_is_accepted_and_others_refused(
    client: TestClient, schema: str, name: str
) -> None:
    endpoint = ENDPOINTS[(schema, name)]
    endpoint.setup(client)
    for value in OUTSIDE:
        response = send(client, endpoint, name, value)
        assert (response.status_code, response.json()) == (
            endpoint.status,
            error(endpoint.description, endpoint.message),
        ), value
    # "disable" shuts the key out: it goes last.
    for value in sorted(FIELDS[(schema, name)], key=lambda v: v == "disable"):
        response = send(client, endpoint, name, value)
        assert response.status_code in (200, 201), (value, response.text)
        key = response.json().get("params", {}).get("key")
        if schema == "ZapiUserUpdate" and key and key != "********":
            client.headers["ZAPI_KEY"] = key  # a generated key replaces the old one
