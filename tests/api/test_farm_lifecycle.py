"""PUT /farms/NAME/actions and DELETE /farms/NAME (reference §4.7, §4.8; checklist "Farms")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter

from .builders import (
    BOTH_DATABASES,
    INTERFACES,
    VIP_ALIAS,
    Serve,
    TestClient,
    add_backend,
    create_farm,
    error,
    expect,
    farm_action,
    farm_detail,
    get_farm,
    list_farms,
    url,
)

pytestmark = pytest.mark.parametrize("database", BOTH_DATABASES, indirect=True)


class Interfaces:
    """An address book whose addresses a test can take away."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = dict(addresses)

    def interface_of(self, ip: str) -> str | None:
        return self.addresses.get(ip)


def action_done(name: str, action: str, status: str) -> dict[str, Any]:
    return {
        "description": f"Set a new action in {name}",
        "params": {"action": action, "status": status},
    }


# -- actions -------------------------------------------------------------------------------


def test_stop_and_start(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    add_backend(client)
    running = copy.deepcopy(nft.state)

    response = client.put(url("/farms/web/actions"), json={"action": "stop"})
    expect(response, 200, action_done("web", "stop", "down"))
    assert get_farm(client)["params"]["status"] == "down"
    assert nft.state != running

    response = client.put(url("/farms/web/actions"), json={"action": "start"})
    expect(response, 200, action_done("web", "start", "up"))
    assert get_farm(client)["params"]["status"] == "up"
    assert nft.state == running


@pytest.mark.parametrize(
    ("backends", "action", "status"),
    [
        (0, "start", "critical"),
        (1, "start", "up"),
        (0, "restart", "critical"),
        (1, "restart", "up"),
        (1, "stop", "down"),
    ],
)
def test_actions_on_a_running_farm(
    client: TestClient, backends: int, action: str, status: str
) -> None:
    create_farm(client)
    for n in range(backends):
        add_backend(client, ip=f"192.0.2.{n + 1}")
    response = client.put(url("/farms/web/actions"), json={"action": action})
    expect(response, 200, action_done("web", action, status))
    assert get_farm(client)["params"]["status"] == status


@pytest.mark.parametrize(
    ("action", "status"), [("stop", "down"), ("start", "up"), ("restart", "up")]
)
def test_actions_on_a_stopped_farm(client: TestClient, action: str, status: str) -> None:
    create_farm(client)
    add_backend(client)
    farm_action(client, "web", "stop")
    response = client.put(url("/farms/web/actions"), json={"action": action})
    expect(response, 200, action_done("web", action, status))
    assert get_farm(client)["params"]["status"] == status


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "No action has been requested."),
        ({"action": None}, "No action has been requested."),
        ({"actions": "stop"}, "No action has been requested."),
        *[
            ({"action": bad}, "Invalid action; the actions available are stop, start and restart")
            for bad in ("", "Stop", "reload", "up", "maintenance", 1, True, ["stop"], {"a": 1})
        ],
    ],
)
def test_action_errors(client: TestClient, body: dict[str, Any], message: str) -> None:
    create_farm(client)
    expect(client.put(url("/farms/web/actions"), json=body), 400, error("Farm actions", message))
    expect(client.get(url("/farms/web")), 200, farm_detail())


def test_action_on_a_missing_farm_is_404(client: TestClient) -> None:
    response = client.put(url("/farms/nope/actions"), json={"action": "start"})
    expect(response, 404, error("Farm actions", "The farmname nope does not exist."))


def test_stop_cuts_the_farm_connections(client: TestClient, ct: NullConntrack) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")
    farm_action(client, "web", "start")  # already running: nothing to cut
    assert ct.flushed == []
    farm_action(client, "web", "stop")
    cut = list(ct.flushed)
    assert len(cut) == 2  # one mark per backend
    farm_action(client, "web", "stop")  # already stopped: nothing more to cut
    farm_action(client, "web", "start")
    assert ct.flushed == cut


def test_restart_cuts_the_farm_connections(client: TestClient, ct: NullConntrack) -> None:
    create_farm(client)
    add_backend(client)
    farm_action(client, "web", "restart")
    assert len(ct.flushed) == 1


def test_stopping_a_farm_without_backends_cuts_nothing(
    client: TestClient, ct: NullConntrack
) -> None:
    create_farm(client)
    farm_action(client, "web", "stop")
    assert ct.flushed == []


@pytest.mark.parametrize("action", ["start", "restart"])
def test_start_needs_the_vip_on_an_interface(
    serve: Serve, nft: FakeNftAdapter, ct: NullConntrack, action: str
) -> None:
    interfaces = Interfaces(INTERFACES)
    with serve(nft=nft, addresses=interfaces) as client:
        create_farm(client, vip=VIP_ALIAS)
        add_backend(client)
        if action == "start":
            farm_action(client, "web", "stop")
        status = get_farm(client)["params"]["status"]
        cut = list(ct.flushed)
        del interfaces.addresses[VIP_ALIAS]
        response = client.put(url("/farms/web/actions"), json={"action": action})
        message = f"The virtual ip {VIP_ALIAS} is not defined in any interface."
        expect(response, 400, error("Farm actions", message))
        assert get_farm(client)["params"]["status"] == status
        assert ct.flushed == cut  # a refused restart does not stop the farm either


# -- delete --------------------------------------------------------------------------------


def deleted(name: str) -> dict[str, str]:
    return {
        "description": f"Delete farm {name}",
        "message": f"The Farm {name} has been deleted.",
        "success": "true",
    }


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
def test_delete_farm(client: TestClient, nft: FakeNftAdapter, stopped: bool) -> None:
    empty = copy.deepcopy(nft.state)
    create_farm(client)
    add_backend(client)
    if stopped:
        farm_action(client, "web", "stop")
    expect(client.delete(url("/farms/web")), 200, deleted("web"))
    expect(client.get(url("/farms/web")), 404, error("Show farm web", "Farm not found."))
    assert list_farms(client) == []
    assert nft.state == empty
    response = client.delete(url("/farms/web"))
    expect(response, 404, error("Delete farm web", "The farm web doesn't exist, try another name."))


def test_delete_missing_farm_is_404(client: TestClient) -> None:
    response = client.delete(url("/farms/nope"))
    expect(
        response, 404, error("Delete farm nope", "The farm nope doesn't exist, try another name.")
    )


def test_deleting_a_running_farm_cuts_its_connections(
    client: TestClient, ct: NullConntrack
) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")
    assert ct.flushed == []
    expect(client.delete(url("/farms/web")), 200, deleted("web"))
    assert len(ct.flushed) == 2


def test_delete_leaves_other_farms_alone(client: TestClient) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="other", vport=81)
    add_backend(client, "other")
    other = get_farm(client, "other")
    expect(client.delete(url("/farms/web")), 200, deleted("web"))
    assert get_farm(client, "other") == other


def test_a_deleted_farm_frees_its_name_and_port(client: TestClient) -> None:
    create_farm(client, name="web")
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")
    client.delete(url("/farms/web"))
    create_farm(client, name="other")  # same VIP and port
    create_farm(client, name="web", vport=81)
    assert add_backend(client, "web") == 0
