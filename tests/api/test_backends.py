"""l4xnat backends: GET/POST /farms/NAME/backends, PUT/DELETE /farms/NAME/backends/ID
(reference §5.1-5.4, zapi31.md §1 "JSON types", checklist "Backends")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter

from .builders import (
    BACKEND_IP,
    BACKEND_IP6,
    VIP6,
    TestClient,
    add_backend,
    backend,
    create_farm,
    error,
    expect,
    farm_action,
    get_farm,
    url,
)

IP_BLANK_MSG = "Invalid backend IP value. It cannot be in blank."
IP_MSG = "Invalid backend IP value."
PORT_MSG = "Invalid IP address and port for a backend, it can't be blank."
WEIGHT_MSG = "Invalid backend weight value, please insert a value form 1 to 9."
PRIORITY_MSG = "Invalid backend priority value, please insert a value within the range 0-9."
MAX_CONNS_MSG = "Invalid backend connection limit value, accepted values are 0 or higher."
NO_BACKEND_MSG = "Could not find a backend with such id."


def added(params: dict[str, Any], status: str = "up") -> dict[str, Any]:
    return {
        "description": "New farm backend",
        "message": "Backend added",
        "params": params,
        "status": status,
    }


def echo(
    backend_id: int = 0,
    *,
    ip: str = BACKEND_IP,
    port: int | None = 8080,
    weight: int | None = None,
    priority: int | None = None,
    max_conns: int = 0,
) -> dict[str, Any]:
    """`params` of POST /farms/NAME/backends: weight and priority are null when not sent."""
    return {
        "id": backend_id,
        "ip": ip,
        "max_conns": max_conns,
        "port": port,
        "priority": priority,
        "weight": weight,
    }


def modified(params: dict[str, Any], status: str = "up") -> dict[str, Any]:
    return {
        "description": "Modify backend",
        "message": "Backend modified",
        "params": params,
        "status": status,
    }


def removed(status: str) -> dict[str, Any]:
    return {
        "description": "Delete backend",
        "message": "Backend removed",
        "status": status,
        "success": "true",
    }


def backends_of(client: TestClient, farm: str = "web") -> list[dict[str, Any]]:
    backends: list[dict[str, Any]] = get_farm(client, farm)["backends"]
    return backends


# -- POST ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "port"),
    [
        ({"port": 8080}, 8080),
        ({"port": "8080"}, 8080),
        ({"port": 1}, 1),
        ({"port": "65535"}, 65535),
        ({}, None),
        ({"port": None}, None),
        ({"port": ""}, None),
    ],
)
def test_add_backend(client: TestClient, fields: dict[str, Any], port: int | None) -> None:
    create_farm(client)
    response = client.post(url("/farms/web/backends"), json={"ip": BACKEND_IP, **fields})
    expect(response, 201, added(echo(port=port)))
    assert backends_of(client) == [backend(0, port=port)]


@pytest.mark.parametrize(
    ("fields", "echoed", "stored"),
    [
        (
            {"weight": 5, "priority": 2, "max_conns": 100},
            {"weight": 5, "priority": 2, "max_conns": 100},
            {"weight": 5, "priority": 2, "max_conns": 100},
        ),
        (
            {"weight": "9", "priority": "9", "max_conns": "0"},
            {"weight": 9, "priority": 9, "max_conns": 0},
            {"weight": 9, "priority": 9, "max_conns": 0},
        ),
        # Priority 0 is stored as 1, as the original did.
        ({"priority": 0}, {"priority": 1}, {"priority": 1}),
        ({"weight": None, "priority": None, "max_conns": None}, {}, {}),
    ],
)
def test_add_backend_with_optional_fields(
    client: TestClient, fields: dict[str, Any], echoed: dict[str, Any], stored: dict[str, Any]
) -> None:
    create_farm(client)
    response = client.post(
        url("/farms/web/backends"), json={"ip": BACKEND_IP, "port": 8080, **fields}
    )
    expect(response, 201, added(echo(**echoed)))
    assert backends_of(client) == [backend(0, **stored)]


def test_ipv6_backends_in_an_ipv6_farm(client: TestClient) -> None:
    create_farm(client, vip=VIP6)
    response = client.post(url("/farms/web/backends"), json={"ip": "2001:DB8:0::0001", "port": 80})
    expect(response, 201, added(echo(ip=BACKEND_IP6, port=80)))
    response = client.post(url("/farms/web/backends"), json={"ip": BACKEND_IP})
    message = (
        "Invalid backend IP value. The farm's VIP is IPv6 and its backends must be of the same "
        "family."
    )
    expect(response, 400, error("New farm backend", message))
    assert backends_of(client) == [backend(0, ip=BACKEND_IP6, port=80)]


def test_ipv6_backend_with_a_zone_index_is_refused(client: TestClient) -> None:
    create_farm(client, vip=VIP6)
    response = client.post(url("/farms/web/backends"), json={"ip": f"{BACKEND_IP6}%eth0"})
    expect(response, 400, error("New farm backend", IP_MSG))


def test_backend_ids_are_the_lowest_free_ones(client: TestClient) -> None:
    create_farm(client)
    assert [add_backend(client, ip=f"192.0.2.{n}") for n in (1, 2, 3)] == [0, 1, 2]
    expect(client.delete(url("/farms/web/backends/1")), 200, removed("up"))
    assert [b["id"] for b in backends_of(client)] == [0, 2]  # the others keep their ids
    assert add_backend(client, ip="192.0.2.4") == 1
    assert add_backend(client, ip="192.0.2.5") == 3
    assert [(b["id"], b["ip"]) for b in backends_of(client)] == [
        (0, "192.0.2.1"),
        (1, "192.0.2.4"),
        (2, "192.0.2.3"),
        (3, "192.0.2.5"),
    ]


def test_backend_status_reports_the_farm_status(client: TestClient) -> None:
    create_farm(client)
    farm_action(client, "web", "stop")
    response = client.post(url("/farms/web/backends"), json={"ip": BACKEND_IP, "port": 8080})
    expect(response, 201, added(echo(), status="down"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ip": None}, IP_BLANK_MSG),
        ({"ip": ""}, IP_BLANK_MSG),
        ({"ip": "192.0.2"}, IP_MSG),
        ({"ip": "192.0.2.256"}, IP_MSG),
        ({"ip": "192.0.2.01"}, IP_MSG),
        ({"ip": "192.0.2.1:8080"}, IP_MSG),
        ({"ip": "192.0.2.0/24"}, IP_MSG),
        ({"ip": "backend.example"}, IP_MSG),
        ({"ip": " 192.0.2.1"}, IP_MSG),
        ({"ip": 3221225985}, IP_MSG),
        ({"ip": True}, IP_MSG),
        ({"ip": ["192.0.2.1"]}, IP_MSG),
        (
            {"ip": BACKEND_IP6},
            "Invalid backend IP value. The farm's VIP is IPv4 and its backends must be of the "
            "same family.",
        ),
        ({"port": 0}, PORT_MSG),
        ({"port": "0"}, PORT_MSG),
        ({"port": 65536}, PORT_MSG),
        ({"port": "65536"}, PORT_MSG),
        ({"port": -1}, PORT_MSG),
        ({"port": "-1"}, PORT_MSG),
        ({"port": 10**30}, PORT_MSG),
        ({"port": "abc"}, PORT_MSG),
        ({"port": "80 "}, PORT_MSG),
        ({"port": "\uff18\uff10"}, PORT_MSG),
        ({"port": 80.0}, PORT_MSG),
        ({"port": True}, PORT_MSG),
        ({"port": False}, PORT_MSG),
        ({"port": [80]}, PORT_MSG),
        ({"port": {"n": 80}}, PORT_MSG),
        ({"port": "8080\n"}, PORT_MSG),
        ({"weight": 0}, WEIGHT_MSG),
        ({"weight": 10}, WEIGHT_MSG),
        ({"weight": "10"}, WEIGHT_MSG),
        ({"weight": -1}, WEIGHT_MSG),
        ({"weight": "x"}, WEIGHT_MSG),
        ({"weight": ""}, WEIGHT_MSG),
        ({"weight": 1.5}, WEIGHT_MSG),
        ({"weight": True}, WEIGHT_MSG),
        ({"weight": [1]}, WEIGHT_MSG),
        ({"priority": 10}, PRIORITY_MSG),
        ({"priority": -1}, PRIORITY_MSG),
        ({"priority": "x"}, PRIORITY_MSG),
        ({"priority": 2.0}, PRIORITY_MSG),
        ({"priority": False}, PRIORITY_MSG),
        ({"max_conns": -1}, MAX_CONNS_MSG),
        ({"max_conns": "-1"}, MAX_CONNS_MSG),
        ({"max_conns": "x"}, MAX_CONNS_MSG),
        ({"max_conns": 1.5}, MAX_CONNS_MSG),
        ({"max_conns": True}, MAX_CONNS_MSG),
        ({"max_conns": "99999999999"}, MAX_CONNS_MSG),
        ({"max_conns": 10**20}, MAX_CONNS_MSG),
        ({"max_conns": 2**63}, MAX_CONNS_MSG),
    ],
)
def test_add_backend_errors(
    client: TestClient, nft: FakeNftAdapter, fields: dict[str, Any], message: str
) -> None:
    create_farm(client)
    batches = len(nft.batches)
    body = {"ip": BACKEND_IP, "port": 8080, **fields}
    expect(
        client.post(url("/farms/web/backends"), json=body), 400, error("New farm backend", message)
    )
    assert backends_of(client) == []
    assert len(nft.batches) == batches


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"port": 8080}, {"port": 8080}),
        ({"port": 8080}, {"port": "8080"}),
        ({}, {}),
        ({}, {"port": ""}),
    ],
)
def test_duplicate_ip_and_port_is_refused(
    client: TestClient, first: dict[str, Any], second: dict[str, Any]
) -> None:
    create_farm(client)
    client.post(url("/farms/web/backends"), json={"ip": BACKEND_IP, **first})
    response = client.post(url("/farms/web/backends"), json={"ip": BACKEND_IP, **second})
    message = f"The IP {BACKEND_IP} is already set in farm web"
    expect(response, 400, error("New farm backend", message))
    assert len(backends_of(client)) == 1


def test_same_ip_on_another_port_is_another_backend(client: TestClient) -> None:
    create_farm(client)
    assert add_backend(client, port=8080) == 0
    assert add_backend(client, port=8081) == 1
    assert backends_of(client) == [backend(0, port=8080), backend(1, port=8081)]


def test_add_backend_to_a_missing_farm_is_404(client: TestClient) -> None:
    response = client.post(url("/farms/nope/backends"), json={"ip": BACKEND_IP})
    expect(response, 404, error("New farm backend", "The farmname nope does not exist."))


def test_adding_a_backend_reaches_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    batches, state = len(nft.batches), copy.deepcopy(nft.state)
    add_backend(client)
    assert len(nft.batches) == batches + 1
    assert nft.state != state


# -- GET -----------------------------------------------------------------------------------


def test_list_backends(client: TestClient) -> None:
    create_farm(client)
    expect(
        client.get(url("/farms/web/backends")), 200, {"description": "List backends", "params": []}
    )
    add_backend(client, ip="192.0.2.1", port=80)
    add_backend(client, ip="192.0.2.2", port=None, weight=3, priority=2, max_conns=7)
    expected = [
        backend(0, ip="192.0.2.1", port=80),
        backend(1, ip="192.0.2.2", port=None, weight=3, priority=2, max_conns=7),
    ]
    response = client.get(url("/farms/web/backends"))
    expect(response, 200, {"description": "List backends", "params": expected})


def test_list_backends_of_a_missing_farm_is_404(client: TestClient) -> None:
    response = client.get(url("/farms/nope/backends"))
    expect(response, 404, error("List backends", "The farmname nope does not exist."))


# -- PUT -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "echoed", "stored"),
    [
        ({"weight": 3}, {"weight": 3}, {"weight": 3}),
        ({"weight": "3"}, {"weight": 3}, {"weight": 3}),
        ({"priority": "2"}, {"priority": 2}, {"priority": 2}),
        ({"priority": 0}, {"priority": 0}, {"priority": 1}),
        ({"max_conns": "250"}, {"max_conns": 250}, {"max_conns": 250}),
        ({"port": 9090}, {"port": 9090}, {"port": 9090}),
        ({"port": "9090"}, {"port": 9090}, {"port": 9090}),
        ({"port": ""}, {"port": None}, {"port": None}),
        ({"ip": "192.0.2.99"}, {"ip": "192.0.2.99"}, {"ip": "192.0.2.99"}),
        (
            {"ip": "192.0.2.9", "port": "9", "weight": "2", "priority": "3", "max_conns": "4"},
            {"ip": "192.0.2.9", "port": 9, "weight": 2, "priority": 3, "max_conns": 4},
            {"ip": "192.0.2.9", "port": 9, "weight": 2, "priority": 3, "max_conns": 4},
        ),
        # Nulls leave a field unchanged and are echoed.
        (
            {"ip": None, "port": None, "weight": None, "priority": None, "max_conns": None},
            {"ip": None, "port": None, "weight": None, "priority": None, "max_conns": None},
            {},
        ),
        # What the Go client's UpdateBackend sends: the whole BackendDetails object.
        (
            {
                "id": 0,
                "ip": BACKEND_IP,
                "port": 8080,
                "status": "maintenance",
                "timeout": None,
                "weight": 4,
                "farmname": "web",
                "servicename": "",
            },
            {
                "id": 0,
                "ip": BACKEND_IP,
                "port": 8080,
                "status": "maintenance",
                "timeout": None,
                "weight": 4,
                "farmname": "web",
                "servicename": "",
            },
            {"weight": 4},
        ),
        ({}, {}, {}),
    ],
)
def test_modify_backend(
    client: TestClient, body: dict[str, Any], echoed: dict[str, Any], stored: dict[str, Any]
) -> None:
    create_farm(client)
    add_backend(client)
    expect(client.put(url("/farms/web/backends/0"), json=body), 200, modified(echoed))
    assert backends_of(client) == [backend(0, **stored)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ip": ""}, "Invalid IP."),
        ({"ip": "192.0.2"}, "Invalid IP."),
        ({"ip": "192.0.2.001"}, "Invalid IP."),
        ({"ip": 1}, "Invalid IP."),
        ({"ip": BACKEND_IP6}, "Invalid IP."),
        ({"port": 0}, "Invalid port number."),
        ({"port": 65536}, "Invalid port number."),
        ({"port": "abc"}, "Invalid port number."),
        ({"port": -1}, "Invalid port number."),
        ({"port": 80.0}, "Invalid port number."),
        ({"port": True}, "Invalid port number."),
        ({"port": [80]}, "Invalid port number."),
        ({"port": "8080\n"}, "Invalid port number."),
        ({"weight": 0}, WEIGHT_MSG),
        ({"weight": 10}, WEIGHT_MSG),
        ({"weight": "x"}, WEIGHT_MSG),
        ({"weight": True}, WEIGHT_MSG),
        *[
            (
                {"priority": bad},
                "Error, trying to modify the backends in the farm web, invalid priority. "
                "The higher value is 9.",
            )
            for bad in (10, -1, "x", True, 1.0)
        ],
        *[
            (
                {"max_conns": bad},
                "Error, trying to modify the connection limit in the farm web, invalid value.",
            )
            for bad in (-1, "x", 1.5, False)
        ],
        (
            {"max_conns": 10**20},
            "Error, trying to modify the connection limit in the farm web, invalid value.",
        ),
        # One bad field among good ones: nothing applies.
        ({"weight": 5, "priority": 2, "port": 0}, "Invalid port number."),
    ],
)
def test_modify_backend_errors(
    client: TestClient, nft: FakeNftAdapter, body: dict[str, Any], message: str
) -> None:
    create_farm(client)
    add_backend(client)
    batches = len(nft.batches)
    response = client.put(url("/farms/web/backends/0"), json=body)
    expect(response, 400, error("Modify backend", message))
    assert backends_of(client) == [backend(0)]
    assert len(nft.batches) == batches


@pytest.mark.parametrize(
    ("second", "body"),
    [
        ({"ip": "192.0.2.2", "port": 8080}, {"ip": "192.0.2.1"}),
        ({"ip": "192.0.2.1", "port": 8081}, {"port": 8080}),
        ({"ip": "192.0.2.2", "port": 8081}, {"ip": "192.0.2.1", "port": "8080"}),
    ],
)
def test_modify_backend_onto_another_is_refused(
    client: TestClient, second: dict[str, Any], body: dict[str, Any]
) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1", port=8080)
    add_backend(client, **second)
    before = backends_of(client)
    response = client.put(url("/farms/web/backends/1"), json=body)
    message = "The IP 192.0.2.1 is already set in farm web"
    expect(response, 400, error("Modify backend", message))
    assert backends_of(client) == before


def test_modify_missing_backend_or_farm_is_404(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)
    for backend_id in (1, 99, 2**70):
        response = client.put(url(f"/farms/web/backends/{backend_id}"), json={"weight": 2})
        expect(response, 404, error("Modify backend", NO_BACKEND_MSG))
    response = client.put(url("/farms/nope/backends/0"), json={"weight": 2})
    expect(response, 404, error("Modify backend", "The farmname nope does not exist."))


# -- DELETE --------------------------------------------------------------------------------


def test_delete_backend(client: TestClient, ct: NullConntrack) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")
    expect(client.delete(url("/farms/web/backends/0")), 200, removed("up"))
    assert backends_of(client) == [backend(1, ip="192.0.2.2")]
    assert len(ct.flushed) == 1  # its connections are cut
    expect(client.delete(url("/farms/web/backends/1")), 200, removed("critical"))
    assert backends_of(client) == []
    response = client.delete(url("/farms/web/backends/1"))
    expect(response, 404, error("Delete backend", NO_BACKEND_MSG))


def test_delete_backend_of_a_missing_farm_is_404(client: TestClient) -> None:
    response = client.delete(url("/farms/nope/backends/0"))
    expect(response, 404, error("Delete backend", "The farmname nope does not exist."))
