"""PUT /farms/NAME/backends/ID/maintenance (reference §5.5, checklist "Backends")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter

from .builders import (
    TestClient,
    add_backend,
    backend,
    create_farm,
    error,
    expect,
    farm_action,
    get_farm,
    set_maintenance,
    url,
)

DESC = "Set backend status"


def done(action: str, farm_status: str) -> dict[str, Any]:
    return {"description": DESC, "params": {"action": action, "farm": {"status": farm_status}}}


def two_backends(client: TestClient) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")


def statuses(client: TestClient) -> list[str]:
    return [b["status"] for b in get_farm(client)["backends"]]


@pytest.mark.parametrize(
    ("body", "cuts"),
    [
        ({"action": "maintenance"}, False),  # drain is the default
        ({"action": "maintenance", "mode": None}, False),
        ({"action": "maintenance", "mode": "drain"}, False),
        ({"action": "maintenance", "mode": "cut"}, True),
    ],
)
def test_maintenance_and_back_up(
    client: TestClient, nft: FakeNftAdapter, ct: NullConntrack, body: dict[str, Any], cuts: bool
) -> None:
    two_backends(client)
    before = copy.deepcopy(nft.state)

    response = client.put(url("/farms/web/backends/0/maintenance"), json=body)
    expect(response, 200, done("maintenance", "maintenance"))
    assert statuses(client) == ["maintenance", "up"]
    assert nft.state != before  # the backend left the scheduler
    assert len(ct.flushed) == (1 if cuts else 0)

    response = client.put(url("/farms/web/backends/0/maintenance"), json={"action": "up"})
    expect(response, 200, done("up", "up"))
    assert statuses(client) == ["up", "up"]
    assert nft.state == before
    assert len(ct.flushed) == (1 if cuts else 0)


def test_every_backend_in_maintenance_leaves_the_farm_critical(client: TestClient) -> None:
    two_backends(client)
    expect(set_maintenance(client, "web", 0, mode="cut"), 200, done("maintenance", "maintenance"))
    expect(set_maintenance(client, "web", 1), 200, done("maintenance", "critical"))
    expect(set_maintenance(client, "web", 1), 200, done("maintenance", "critical"))  # again
    assert statuses(client) == ["maintenance", "maintenance"]


def test_maintenance_on_a_stopped_farm(client: TestClient) -> None:
    two_backends(client)
    farm_action(client, "web", "stop")
    expect(set_maintenance(client, "web", 1), 200, done("maintenance", "down"))
    assert statuses(client) == ["up", "maintenance"]
    assert farm_action(client, "web", "start") == {"action": "start", "status": "maintenance"}


def test_maintenance_survives_backend_edits(client: TestClient) -> None:
    two_backends(client)
    set_maintenance(client, "web", 0)
    response = client.put(url("/farms/web/backends/0"), json={"weight": 3})
    assert response.status_code == 200
    assert get_farm(client)["backends"][0] == backend(
        0, ip="192.0.2.1", weight=3, status="maintenance"
    )


def test_up_ignores_the_mode(client: TestClient) -> None:
    two_backends(client)
    set_maintenance(client, "web", 0)
    response = client.put(
        url("/farms/web/backends/0/maintenance"), json={"action": "up", "mode": "x"}
    )
    expect(response, 200, done("up", "up"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "No maintenance action was requested."),
        ({"action": None}, "No maintenance action was requested."),
        ({"mode": "cut"}, "No maintenance action was requested."),
        *[
            (
                {"action": "maintenance", "mode": mode},
                "Error, the maintenance mode is not a valid value.",
            )
            for mode in ("", "soft", "CUT", "Drain", 1, True, ["cut"])
        ],
        *[
            ({"action": action}, "Invalid action; the possible actions are up and maintenance")
            for action in ("", "down", "Maintenance", "UP", "start", 1, False, ["up"], {"a": 1})
        ],
    ],
)
def test_maintenance_errors(
    client: TestClient, ct: NullConntrack, body: dict[str, Any], message: str
) -> None:
    two_backends(client)
    response = client.put(url("/farms/web/backends/0/maintenance"), json=body)
    expect(response, 400, error(DESC, message))
    assert statuses(client) == ["up", "up"]
    assert ct.flushed == []


@pytest.mark.parametrize(
    ("farm", "backend_id", "message"),
    [
        ("web", 2, "Could not find a backend with such id."),
        ("web", 12345678901234567890, "Could not find a backend with such id."),
        ("nope", 0, "The farmname nope does not exist."),
    ],
)
def test_maintenance_of_a_missing_backend_or_farm_is_404(
    client: TestClient, farm: str, backend_id: int, message: str
) -> None:
    two_backends(client)
    response = set_maintenance(client, farm, backend_id, mode="cut")
    expect(response, 404, error(DESC, message))
