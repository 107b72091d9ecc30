"""Every enumeration of a request body in openapi/openapi.json is what the API accepts.

The test walks the checked-in document, ZAPI v3.1 and v4.0: for each request-body field with an
`enum`, every listed value is sent to its endpoint and accepted, and a value outside the list is
refused with ZAPI's message (4.0: its envelope with `documentation`).  A new enumerated field
fails `test_every_enumerated_field_is_walked` until it gets a line in `ENDPOINTS` (or
`ENDPOINTS40`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .builders import (
    BASE,
    BASE_V40,
    DOCUMENTATION,
    JSON,
    VIP,
    TestClient,
    add_backend,
    create_farm,
    error,
    url,
)

SPEC = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
OUTSIDE = ("not-a-value", 7)  # a string no enumeration holds, and a number


def request_schemas(spec: JSON, base: str) -> dict[str, tuple[str, str]]:
    """Request-body schema name -> (method, path template) of an operation under `base` (the
    v3.1 or the v4.0 one) that takes it."""
    found: dict[str, tuple[str, str]] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith(base + "/"):
            continue
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                found.setdefault(body["schema"]["$ref"].rsplit("/", 1)[1], (method, path))
    return found


def enum_of(schema: JSON) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:  # a one-value enumeration (pydantic writes Literal["x"] so)
        return [schema["const"]]
    for option in schema.get("anyOf", ()):
        values = enum_of(option)
        if values is not None:
            return values
    return None


def enumerated_fields(spec: JSON, base: str) -> dict[tuple[str, str], list[Any]]:
    fields = {}
    for name in request_schemas(spec, base):
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
    named: str = ""  # each request creates an object: give it a name of its own in this key
    base_url: str = BASE


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
        "Create a blacklist.",
        "The parameter policy has not a valid value.",
        setup=no_setup,
        method="post",
        named="name",
    ),
    ("ListCreate", "type"): Endpoint(
        "/ipds/blacklists",
        "Create a blacklist.",
        "The parameter type has not a valid value.",
        setup=no_setup,
        method="post",
        named="name",
    ),
    ("ListUpdate", "policy"): Endpoint(
        "/ipds/blacklists/bad",
        "Modify list bad.",
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


def error40(description: str, message: str) -> JSON:
    return {**error(description, message), "documentation": DOCUMENTATION}


def one_of(name: str, values: list[str]) -> str:
    """The 4.0 checker's answer to a value outside a parameter's list."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"The parameter '{name}' expects one of the following values: {quoted}"


def farm_guardian40(client: TestClient) -> None:
    response = client.post(url("/monitoring/fg", base=BASE_V40), json={"name": "check"})
    assert response.status_code == 200, response.text


def virtual_interface40(client: TestClient) -> None:
    virtual_interface(client)


FARM_MODIFY40 = "Modify L4xNAT farm 'web'"
FG_MODIFY40 = "Modify farm guardian 'check'"
# Each 4.0 field: the endpoint, and the values the refusal lists (the document's, unless the
# checker's own list says otherwise).
ENDPOINTS40: dict[tuple[str, str], Endpoint] = {
    ("FarmCreate40", "profile"): Endpoint(
        "/farms",
        "Creating a farm",
        one_of("profile", ["l4xnat"]),
        setup=no_setup,
        method="post",
        base={"vip": VIP, "vport": "80"},
        named="farmname",
        base_url=BASE_V40,
    ),
    **{
        ("FarmModify40", name): Endpoint(
            FARM, FARM_MODIFY40, one_of(name, values), base_url=BASE_V40
        )
        for name, values in (
            (
                "algorithm",
                [
                    "weight",
                    "roundrobin",
                    "hash_srcip_srcport",
                    "hash_srcip",
                    "symhash",
                    "leastconn",
                ],
            ),
            (
                "persistence",
                ["ip", "srcip", "srcport", "srcmac", "srcip_srcport", "srcip_dstport", "none"],
            ),
            (
                "protocol",
                ["all", "tcp", "udp", "sctp", "sip", "ftp", "tftp", "pptp", "snmp"],
            ),
            ("nattype", ["nat", "dnat", "dsr", "stateless_dnat"]),
        )
    },
    ("FarmAction40", "action"): Endpoint(
        f"{FARM}/actions",
        "Farm actions",
        one_of("action", ["stop", "start", "restart"]),
        base_url=BASE_V40,
    ),
    ("Maintenance40", "action"): Endpoint(
        f"{FARM}/backends/0/maintenance",
        "Set backend status",
        one_of("action", ["up", "maintenance"]),
        setup=farm_with_backend,
        base_url=BASE_V40,
    ),
    ("Maintenance40", "mode"): Endpoint(
        f"{FARM}/backends/0/maintenance",
        "Set backend status",
        one_of("mode", ["drain", "cut"]),
        setup=farm_with_backend,
        base={"action": "maintenance"},
        base_url=BASE_V40,
    ),
    **{
        ("FgModify40", name): Endpoint(
            "/monitoring/fg/check",
            FG_MODIFY40,
            one_of(name, ["true", "false"]),
            setup=farm_guardian40,
            base_url=BASE_V40,
        )
        for name in ("log", "cut_conns", "backend_alias", "force")
    },
    ("VirtualModify40", "force"): Endpoint(
        "/interfaces/virtual/eth0:vip9",
        "Modify virtual interface",
        one_of("force", ["true"]),
        setup=virtual_interface40,
        base={"ip": "198.18.4.31"},
        base_url=BASE_V40,
    ),
    ("VirtualAction40", "action"): Endpoint(
        "/interfaces/virtual/eth0:vip9/actions",
        "Action on virtual interface",
        one_of("action", ["up", "down"]),
        setup=virtual_interface40,
        method="post",
        base_url=BASE_V40,
    ),
}


FIELDS = enumerated_fields(SPEC, BASE)
FIELDS40 = enumerated_fields(SPEC, BASE_V40)


def test_every_enumerated_field_is_walked() -> None:
    assert sorted(FIELDS) == sorted(ENDPOINTS)
    assert sorted(FIELDS40) == sorted(ENDPOINTS40)


def test_farm_update_offers_every_nattype() -> None:
    assert FIELDS[("FarmUpdate", "nattype")] == ["nat", "dnat", "dsr", "stateless_dnat"]


def send(client: TestClient, endpoint: Endpoint, name: str, value: Any) -> Any:
    body = {**endpoint.base, name: value}
    if endpoint.named:
        body[endpoint.named] = f"n{abs(hash((name, str(value))))}"
    return client.request(
        endpoint.method.upper(), url(endpoint.path, base=endpoint.base_url), json=body
    )


def walk(
    client: TestClient, endpoint: Endpoint, refusal: JSON, schema: str, name: str, values: list[Any]
) -> None:
    """Values outside the list get `refusal`; each listed one is accepted."""
    endpoint.setup(client)
    for value in OUTSIDE:
        response = send(client, endpoint, name, value)
        assert (response.status_code, response.json()) == (endpoint.status, refusal), value
    # "disable" shuts the key out: it goes last.
    for value in sorted(values, key=lambda v: v == "disable"):
        response = send(client, endpoint, name, value)
        assert response.status_code in (200, 201), (value, response.text)
        key = response.json().get("params", {}).get("key")
        if schema == "ZapiUserUpdate" and key and key != "********":
            client.headers["ZAPI_KEY"] = key  # a generated key replaces the old one


@pytest.mark.parametrize(("schema", "name"), sorted(ENDPOINTS))
def test_each_listed_value_is_accepted_and_others_refused(
    client: TestClient, schema: str, name: str
) -> None:
    endpoint = ENDPOINTS[(schema, name)]
    refusal = error(endpoint.description, endpoint.message)
    walk(client, endpoint, refusal, schema, name, FIELDS[(schema, name)])


@pytest.mark.parametrize(("schema", "name"), sorted(ENDPOINTS40))
def test_each_listed_v40_value_is_accepted_and_others_refused(
    client: TestClient, schema: str, name: str
) -> None:
    endpoint = ENDPOINTS40[(schema, name)]
    refusal = error40(endpoint.description, endpoint.message)
    walk(client, endpoint, refusal, schema, name, FIELDS40[(schema, name)])
