"""ZAPI v4.0: the requests zcli sends for every l4xnat command (zapi40-l4.md §7), replayed as zcli
builds them (`ZAPI-KEY` header, `Content-Type: application/json`, every value a JSON string),
with the answers the spec gives and the fields zcli's decoder reads.

The app runs with fake links that are also its address book, so virtual interfaces made
through the API carry VIPs, as on a host.  Every test runs twice: in-process, and against a live
server (uvicorn on a Unix socket, real HTTP/1.1 on the wire).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.net.links import StaticLinks
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import (
    BASE_V40,
    DOCUMENTATION,
    HELP,
    KEY,
    Serve,
    TestClient,
    check_zapi_response,
)
from .fakes import ETH0_IP, ETH0_MAC, GATEWAY, fake_app
from .test_generated_client import UnixServer

VIP = ETH0_IP  # 198.18.4.1 on eth0
VIRTUAL_IP = "198.18.4.20"
BACKEND = "198.18.4.50"
BACKEND2 = "198.18.4.51"


class Zcli:
    """Requests as zcli's `zapi()` makes them (zcli:Lib.pm)."""

    def __init__(self, client: TestClient | httpx.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"ZAPI-KEY": KEY}
        content = None
        if method in ("POST", "PUT"):
            headers["Content-Type"] = "application/json"
            content = json.dumps(body if body is not None else {})
        return self.client.request(method, BASE_V40 + path, headers=headers, content=content)

    def ok(
        self, method: str, path: str, body: dict[str, Any] | None = None, status: int = 200
    ) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def fails(
        self, method: str, path: str, body: dict[str, Any] | None, status: int, message: str
    ) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert (response.status_code, response.json()["message"]) == (status, message)
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture(params=["in-process", "live"])
def zcli(
    request: pytest.FixtureRequest,
    serve: Serve,
    nft: FakeNftAdapter,
    links: StaticLinks,
    settings: Settings,
    tmp_path: Path,
) -> Iterator[Zcli]:
    if request.param == "in-process":
        with serve(nft=nft, addresses=links, key=None) as client:
            yield Zcli(client)
        return
    app = fake_app(settings, nft=nft, addresses=links, links=links)
    with UnixServer(app, tmp_path / "kernlb.sock") as running:
        transport = httpx.HTTPTransport(uds=str(running.socket))
        with httpx.Client(
            base_url="http://kernlb",
            transport=transport,
            event_hooks={"response": [check_zapi_response]},
        ) as live:
            yield Zcli(live)


def help_names(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What zcli's `listParams` reads: name, options (required), possible_values."""
    assert answer["message"] == HELP
    return {item["name"]: item for item in answer["params"]}


def make_farm(zcli: Zcli, name: str = "web", vport: str = "80") -> None:
    zcli.ok(
        "POST",
        "/farms",
        {"farmname": name, "profile": "l4xnat", "vip": VIP, "vport": vport},
        status=201,
    )


def add_backend(zcli: Zcli, farm: str = "web", ip: str = BACKEND, **extra: str) -> dict[str, Any]:
    return zcli.ok("POST", f"/farms/{farm}/backends", {"ip": ip, "port": "8080", **extra}, 201)


# -- discovery: every zcli run -----------------------------------------------------------------


def test_ids_and_system_info_are_what_zcli_needs_to_connect(zcli: Zcli) -> None:
    empty = zcli.ok("GET", "/ids")
    assert empty["description"] == "Get a load balancer object IDs"
    params = empty["params"]
    assert params is not None and params["farms"] is None  # empty branches are null
    assert "check_tcp" in params["farmguardians"] and params["farmguardians"]["check_tcp"] is None
    assert params["interfaces"] == {
        "nic": {"eth0": None, "eth1": None},
        "vlan": None,
        "virtual": None,
    }
    assert params["system"] == {"logs": None}

    make_farm(zcli)
    add_backend(zcli)
    add_backend(zcli, ip=BACKEND2)
    zcli.ok("DELETE", "/farms/web/backends/0")  # ids stay stable: {1}, not the position {0}
    zcli.ok("POST", "/farms/web/fg", {"name": "check_tcp"})
    tree = zcli.ok("GET", "/ids")["params"]
    assert tree["farms"] == {
        "web": {
            "services": {"default_service": {"backends": {"1": None}, "fg": {"check_tcp": None}}}
        }
    }

    info = zcli.ok("GET", "/system/info")
    assert info["description"] == "Get the system information"
    assert info["params"]["edition"] == "community"  # zcli hides the EE commands
    assert info["params"]["supported_zapi_versions"] == ["3", "3.1", "4.0"]
    assert info["params"]["user"] == "root"
    assert all(
        isinstance(v, str) for k, v in info["params"].items() if k != "supported_zapi_versions"
    )
    # The 3.1 base answers both too.
    three = zcli.client.get("/zapi/v3.1/zapi.cgi/ids", headers={"ZAPI-KEY": KEY})
    assert three.status_code == 200 and three.json()["params"]["farms"] == tree["farms"]
    assert (
        zcli.client.get("/zapi/v3.1/zapi.cgi/system/info", headers={"ZAPI-KEY": KEY}).json()[
            "params"
        ]["edition"]
        == "community"
    )


def test_transport_of_the_v40_base(zcli: Zcli) -> None:
    wrong = zcli.client.get(BASE_V40 + "/farms", headers={"ZAPI-KEY": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Authorization required"})
    unknown = zcli.call("GET", "/nothing/here")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "description": "Request not found",
        "documentation": DOCUMENTATION,
        "error": "true",
        "message": "Request not found: /nothing/here",
    }
    bad_json = zcli.client.post(
        BASE_V40 + "/farms",
        headers={"ZAPI-KEY": KEY, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert (bad_json.status_code, bad_json.json()) == (
        400,
        {"error": "true", "message": "The body does not look a valid JSON"},
    )
    media = zcli.client.post(
        BASE_V40 + "/farms", headers={"ZAPI-KEY": KEY, "Content-Type": "text/plain"}, content=b"{}"
    )
    assert (media.status_code, media.json()) == (
        415,
        {"error": "true", "message": "Content-Type not supported"},
    )
    # PUT /farms/NAME/fg is gone from 4.0; the EE-only stats are absent in CE.
    make_farm(zcli)
    zcli.fails(
        "PUT", "/farms/web/fg", {"fgenabled": "true"}, 404, "Request not found: /farms/web/fg"
    )
    for path in (
        "/stats/system/connections",
        "/stats/system/network/interfaces",
        "/stats/farms/total",
    ):
        assert zcli.call("GET", path).status_code == 404


# -- farm commands ------------------------------------------------------------------------------


def test_farm_create_list_get_status(zcli: Zcli) -> None:
    names = help_names(zcli.fails("POST", "/farms", {}, 400, HELP))
    assert names["farmname"]["options"] == ["required"]
    assert names["profile"]["possible_values"] == ["l4xnat"]
    assert set(names) == {"farmname", "profile", "vip", "vport", "copy_from"}

    created = zcli.ok(
        "POST", "/farms", {"farmname": "web", "profile": "l4xnat", "vip": VIP, "vport": "80"}, 201
    )
    assert created == {
        "description": "Creating a farm",
        "message": "The farm web has been created successfully.",
        "params": {
            "farmname": "web",
            "interface": "eth0",
            "profile": "l4xnat",
            "vip": VIP,
            "vport": "80",
        },
    }
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "web", "profile": "l4xnat", "vip": VIP, "vport": "80"},
        400,
        "Error trying to create a new farm, the farm name already exists.",
    )
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "x", "profile": "L4XNAT", "vip": VIP, "vport": "80"},
        400,
        "The parameter 'profile' expects one of the following values: 'l4xnat'",
    )
    foreign = zcli.fails(
        "POST",
        "/farms",
        {"farmname": "x", "profile": "l4xnat", "vip": "203.0.113.9", "vport": "80"},
        400,
        "The parameter 'vip' expects one of the following values: "
        "'127.0.0.1', '198.18.4.1', '2001:2::1'",
    )
    assert foreign["description"] == "Creating a farm"
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "x", "profile": "l4xnat", "vip": VIP, "vport": "90:80"},
        400,
        "Range 90:80 in virtual port is not a valid value.",
    )
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "x", "profile": "l4xnat", "vip": VIP, "vport": "80", "logs": "true"},
        400,
        "The parameter 'logs' is not correct for this call. Please, try with: "
        "'farmname', 'profile', 'vip', 'vport', 'copy_from'",
    )
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "x"},
        400,
        "The required parameters 'profile', 'vip' and 'vport' are missing.",
    )

    listed = zcli.ok("GET", "/farms")
    assert listed["params"] == [
        {"farmname": "web", "profile": "l4xnat", "status": "critical", "vip": VIP, "vport": "80"}
    ]
    detail = zcli.ok("GET", "/farms/web")
    assert detail == {
        "backends": [],
        "description": "List farm web",
        "params": {
            "algorithm": "weight",
            "farmguardian": None,
            "listener": "l4xnat",
            "nattype": "nat",
            "persistence": "",
            "protocol": "tcp",
            "sessions": [],
            "status": "critical",
            "ttl": 60,
            "vip": VIP,
            "vport": 80,
        },
    }
    zcli.fails("GET", "/farms/nope", None, 404, "Farm not found.")
    assert zcli.ok("GET", "/farms/web/status") == {
        "description": "Show farm web status",
        "params": {"status": "critical"},
    }
    zcli.fails("GET", "/farms/nope/status", None, 404, "Farm not found.")
    assert zcli.ok("GET", "/farms/modules/summary") == {
        "description": "Farm Modules summary",
        "params": {"lslb": [{"name": "web", "profile": "l4xnat"}], "gslb": [], "dslb": []},
    }


def test_farm_set_with_string_values(zcli: Zcli) -> None:
    make_farm(zcli)
    names = help_names(zcli.fails("PUT", "/farms/web", {}, 400, HELP))
    assert "ip" in names["persistence"]["possible_values"]
    assert "fgenabled" not in names and "logs" not in names

    zcli.ok("PUT", "/farms/web/actions", {"action": "stop"})
    answer = zcli.ok(
        "PUT",
        "/farms/web",
        {
            "newfarmname": "web2",
            "algorithm": "leastconn",
            "persistence": "srcip",
            "ttl": "120",
            "nattype": "dnat",
        },
    )
    assert answer == {
        "description": "Modify L4xNAT farm 'web'",
        "message": "Some parameters have been changed in farm web2.",
        "params": {
            "newfarmname": "web2",
            "algorithm": "leastconn",
            "persistence": "srcip",
            "ttl": 120,
            "nattype": "dnat",
        },
    }
    params = zcli.ok("GET", "/farms/web2")["params"]
    assert (params["algorithm"], params["persistence"], params["ttl"], params["nattype"]) == (
        "leastconn",
        "ip",
        120,
        "dnat",
    )
    zcli.fails("PUT", "/farms/web", {"ttl": "5"}, 404, "The farmname web does not exist.")
    zcli.fails(
        "PUT",
        "/farms/web2",
        {"algorithm": "prio"},
        410,
        "'Prio' algorithm is not supported anymore.",
    )
    zcli.fails(
        "PUT", "/farms/web2", {"protocol": "irc"}, 410, "'irc' protocol is not supported anymore."
    )
    zcli.fails(
        "PUT",
        "/farms/web2",
        {"ttl": "0"},
        400,
        "The value '0' is not valid for the parameter 'ttl'.",
    )
    zcli.fails(
        "PUT",
        "/farms/web2",
        {"fgenabled": "true"},
        400,
        "The parameter 'fgenabled' is not correct for this call. Please, try with: "
        "'newfarmname', 'algorithm', 'persistence', 'protocol', 'nattype', 'ttl', 'vip', "
        "'vport', 'source_addr'",
    )
    zcli.fails("PUT", "/farms/web2", {"vport": ""}, 400, "The parameter 'vport' can't be in blank.")
    zcli.ok("POST", "/farms/web2/backends", {"ip": BACKEND}, 201)
    zcli.fails(
        "PUT",
        "/farms/web2",
        {"vip": "2001:2::1"},
        400,
        "Invalid VIP address, VIP and backends can't be from diferent IP version.",
    )
    # "all" (or vport "*") sets both; "none" persistence is "".
    answer = zcli.ok("PUT", "/farms/web2", {"vport": "*", "persistence": "none"})
    assert answer["params"] == {"vport": "*", "protocol": "all", "persistence": ""}
    params = zcli.ok("GET", "/farms/web2")["params"]
    assert (params["protocol"], params["vport"], params["persistence"]) == ("all", "*", "")
    zcli.fails(
        "PUT", "/farms/web2", {"vport": "443"}, 400, "Port can not be '443' with protocol 'all'"
    )


def test_farm_actions_and_delete(zcli: Zcli) -> None:
    make_farm(zcli)
    names = help_names(zcli.fails("PUT", "/farms/web/actions", {}, 400, HELP))
    assert names == {
        "action": {
            "name": "action",
            "options": ["non_blank", "required"],
            "possible_values": ["stop", "start", "restart"],
        }
    }
    zcli.fails(
        "PUT", "/farms/nope/actions", {"action": "stop"}, 404, "The farmname nope does not exist."
    )
    zcli.fails(
        "PUT",
        "/farms/web/actions",
        {"action": "pause"},
        400,
        "The parameter 'action' expects one of the following values: 'stop', 'start', 'restart'",
    )
    for action, status in (("stop", "down"), ("start", "critical"), ("restart", "critical")):
        assert zcli.ok("PUT", "/farms/web/actions", {"action": action}) == {
            "description": "Set a new action in web",
            "message": f"The action {action} has been performed in farm web.",
            "params": {"action": action, "status": status},
        }
    assert zcli.ok("DELETE", "/farms/web") == {
        "description": "Delete farm web",
        "message": "The Farm web has been deleted.",
        "success": "true",
    }
    assert zcli.ok("GET", "/farms")["params"] == []


def test_farm_copy_from(zcli: Zcli) -> None:
    make_farm(zcli)
    add_backend(zcli, weight="3")
    zcli.ok("PUT", "/farms/web", {"algorithm": "roundrobin"})
    zcli.ok("POST", "/farms/web/fg", {"name": "check_tcp"})
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "copy", "vip": VIP, "vport": "81", "copy_from": "nope"},
        404,
        "The farm 'nope' does not exist.",
    )
    zcli.fails(
        "POST",
        "/farms",
        {"farmname": "copy", "profile": "http", "vip": VIP, "vport": "81", "copy_from": "web"},
        400,
        "The profile 'http' does not match with the profile 'l4xnat' of the farm 'web'.",
    )
    created = zcli.ok(
        "POST", "/farms", {"farmname": "copy", "vip": VIP, "vport": "81", "copy_from": "web"}, 201
    )
    assert created["params"]["profile"] == "l4xnat"
    copy = zcli.ok("GET", "/farms/copy")
    assert copy["params"]["algorithm"] == "roundrobin"
    assert copy["params"]["farmguardian"] == "check_tcp"
    assert copy["params"]["vport"] == 81 and copy["params"]["status"] == "up"
    assert [(b["id"], b["ip"], b["weight"]) for b in copy["backends"]] == [(0, BACKEND, 3)]
    assert zcli.ok("GET", "/monitoring/fg/check_tcp")["params"]["farms"] == ["copy", "web"]
    # Same address as a running farm: the copy is made, and left stopped.
    zcli.ok(
        "POST", "/farms", {"farmname": "clash", "vip": VIP, "vport": "80", "copy_from": "web"}, 201
    )
    assert zcli.ok("GET", "/farms/clash/status")["params"]["status"] == "down"


# -- backends ---------------------------------------------------------------------------------


def test_backend_add_set_remove(zcli: Zcli) -> None:
    make_farm(zcli)
    names = help_names(zcli.fails("POST", "/farms/web/backends", {}, 400, HELP))
    assert names["ip"]["options"] == ["non_blank", "required"]
    assert names["weight"]["interval"] == "Expects a value between '1' and '9'."
    zcli.fails(
        "POST", "/farms/nope/backends", {"ip": BACKEND}, 404, "The farmname nope does not exist."
    )
    zcli.fails(
        "POST",
        "/farms/web/backends",
        {"ip": "300.1.1.1"},
        400,
        "The value '300.1.1.1' is not valid for the parameter 'ip'.",
    )
    zcli.fails(
        "POST",
        "/farms/web/backends",
        {"ip": BACKEND, "weight": "0"},
        400,
        "'weight' has to be an integer number between '1' and '9'",
    )
    zcli.fails(
        "POST",
        "/farms/web/backends",
        {"ip": BACKEND, "max_conns": "-1"},
        400,
        "'max_conns' has to be an integer number greater than or equal to '0'",
    )

    added = zcli.ok(
        "POST",
        "/farms/web/backends",
        {"ip": BACKEND, "port": "8080", "weight": "2", "priority": "1", "max_conns": "10"},
        201,
    )
    assert added == {
        "description": "New farm backend",
        "message": "Backend added.",
        "params": {
            "id": 0,
            "ip": BACKEND,
            "port": 8080,
            "weight": 2,
            "priority": 1,
            "max_conns": 10,
            "status": "up",
        },
        "status": "up",
    }
    second = zcli.ok("POST", "/farms/web/backends", {"ip": BACKEND2, "priority": "3"}, 201)
    assert second["params"]["port"] is None
    assert second["warning"] == "Backends with high priority value (3) will not be used."

    names = help_names(zcli.fails("PUT", "/farms/web/backends/0", {}, 400, HELP))
    assert "interface" in names
    zcli.fails(
        "PUT",
        "/farms/web/backends/7",
        {"weight": "2"},
        404,
        "Could not find a backend with such id.",
    )
    modified = zcli.ok("PUT", "/farms/web/backends/0", {"weight": "5", "port": "9090"})
    assert modified == {
        "description": "Modify backend",
        "message": "Backend modified.",
        "params": {"weight": "5", "port": "9090"},  # echoed as sent
        "status": "up",
    }
    backends = zcli.ok("GET", "/farms/web/backends")["params"]
    assert [(b["id"], b["weight"], b["port"]) for b in backends] == [(0, 5, 9090), (1, 1, None)]
    removed = zcli.ok("DELETE", "/farms/web/backends/1")
    assert removed == {
        "description": "Delete backend",
        "message": "Backend removed",
        "status": "up",
        "success": "true",
    }


def test_backend_maintenance_and_non_maintenance(zcli: Zcli) -> None:
    make_farm(zcli)
    add_backend(zcli)
    names = help_names(zcli.fails("PUT", "/farms/web/backends/0/maintenance", {}, 400, HELP))
    assert names["action"]["possible_values"] == ["up", "maintenance"]
    assert names["mode"]["possible_values"] == ["drain", "cut"]
    answer = zcli.ok(
        "PUT", "/farms/web/backends/0/maintenance", {"action": "maintenance", "mode": "cut"}
    )
    assert answer == {
        "description": "Set backend status",
        "params": {
            "action": "maintenance",
            "farm": {"status": "critical"},  # its only backend is out
            "message": "The action maintenance has been performed in farm web.",
        },
    }
    assert zcli.ok("GET", "/farms/web")["backends"][0]["status"] == "maintenance"
    zcli.fails(
        "PUT",
        "/farms/web/backends/0/maintenance",
        {"action": "up", "mode": "cut"},
        400,
        "The parameter 'mode' is not correct for this call. Please, try with: 'action'",
    )
    zcli.fails(
        "PUT",
        "/farms/web/backends/9/maintenance",
        {"action": "up"},
        404,
        "Could not find a backend with such id.",
    )
    answer = zcli.ok("PUT", "/farms/web/backends/0/maintenance", {"action": "up"})
    assert answer["params"]["farm"] == {"status": "up"}
    # A zcli "maintenance" without -mode sends only the action: drain.
    zcli.ok("PUT", "/farms/web/backends/0/maintenance", {"action": "maintenance"})
    assert zcli.ok("GET", "/farms/web/backends")["params"][0]["status"] == "maintenance"


# -- farmguardian -------------------------------------------------------------------------------


def test_farmguardian_objects(zcli: Zcli) -> None:
    listed = zcli.ok("GET", "/monitoring/fg")
    assert listed["description"] == "List farm guardian checks and templates"
    assert len(listed["params"]) == 15
    tcp = zcli.ok("GET", "/monitoring/fg/check_tcp")
    assert tcp == {
        "description": "Retrive the farm guardian 'check_tcp'",
        "params": {
            "backend_alias": "false",
            "command": "check_tcp -p PORT -H HOST",
            "cut_conns": "false",
            "description": "Send TCP connection to backend",
            "farms": [],
            "interval": 15,
            "log": "false",
            "name": "check_tcp",
            "template": "true",
            "timeout": 15,
        },
    }
    zcli.fails(
        "GET", "/monitoring/fg/nope", None, 404, "The farm guardian 'nope' has not been found."
    )
    assert help_names(zcli.fails("POST", "/monitoring/fg", {}, 400, HELP))["name"]["options"] == [
        "non_blank",
        "required",
    ]
    blank = zcli.ok("POST", "/monitoring/fg", {"name": "mine"})
    assert blank["message"] == "The farm guardian 'mine' has been created successfully."
    assert blank["params"] == {
        "backend_alias": "false",
        "command": "",
        "cut_conns": "false",
        "description": "",
        "farms": [],
        "interval": 10,
        "log": "false",
        "name": "mine",
        "template": "false",
        "timeout": 10,
    }
    zcli.fails(
        "POST", "/monitoring/fg", {"name": "mine"}, 400, "The farm guardian 'mine' already exists."
    )
    zcli.fails(
        "POST",
        "/monitoring/fg",
        {"name": "check_tcp"},
        400,
        "The farm guardian 'check_tcp' is a template, select another name, please",
    )
    zcli.fails(
        "POST",
        "/monitoring/fg",
        {"name": "x", "copy_from": "nope"},
        400,
        "The parent farm guardian 'nope' does not exist.",
    )
    copied = zcli.ok("POST", "/monitoring/fg", {"name": "tcp2", "copy_from": "check_tcp"})
    assert (copied["params"]["command"], copied["params"]["template"]) == (
        "check_tcp -p PORT -H HOST",
        "false",
    )

    changed = zcli.ok(
        "PUT",
        "/monitoring/fg/tcp2",
        {"interval": "3", "timeout": "2", "log": "true", "cut_conns": "true"},
    )
    assert (
        changed["message"] == "Success, some parameters have been changed in farm guardian 'tcp2'."
    )
    assert (changed["params"]["interval"], changed["params"]["timeout"]) == (3, 2)
    assert (changed["params"]["log"], changed["params"]["cut_conns"]) == ("true", "true")
    zcli.fails(
        "PUT",
        "/monitoring/fg/nope",
        {"interval": "3"},
        400,
        "The farm guardian 'nope' does not exist.",
    )
    zcli.fails(
        "PUT",
        "/monitoring/fg/tcp2",
        {"interval": "0"},
        400,
        "The value '0' is not valid for the parameter 'interval'.",
    )
    zcli.fails(
        "PUT",
        "/monitoring/fg/tcp2",
        {"log": True},
        400,
        "The parameter 'log' expects one of the following values: 'true', 'false'",
    )
    zcli.fails(
        "PUT",
        "/monitoring/fg/check_tcp",
        {"command": "check_tcp -H HOST -p 1"},
        400,
        "It is not allow to modify the parameters 'description' or 'command' in a template.",
    )
    assert zcli.ok("DELETE", "/monitoring/fg/mine") == {
        "description": "Delete the farm guardian 'mine'",
        "message": "mine has been deleted successfully.",
        "success": "true",
    }
    zcli.fails("DELETE", "/monitoring/fg/mine", None, 404, "The farm guardian mine does not exist")


def test_farmguardian_link_and_unlink(zcli: Zcli) -> None:
    make_farm(zcli)
    add_backend(zcli)
    zcli.ok("POST", "/monitoring/fg", {"name": "tcp2", "copy_from": "check_tcp"})
    assert help_names(zcli.fails("POST", "/farms/web/fg", {}, 400, HELP)) == {
        "name": {"name": "name", "options": ["non_blank", "required"]}
    }
    zcli.fails("POST", "/farms/nope/fg", {"name": "tcp2"}, 404, "The farm 'nope' does not exist")
    zcli.fails(
        "POST", "/farms/web/fg", {"name": "nope"}, 404, "The farmguardian 'nope' does not exist"
    )
    added = zcli.ok("POST", "/farms/web/fg", {"name": "tcp2"})
    assert added == {
        "description": "Add the farm guardian 'tcp2' to the 'farm 'web''",
        "message": "Success, The farm guardian 'tcp2' was added to the 'farm 'web''",
        "status": "up",
    }
    zcli.fails(
        "POST",
        "/farms/web/fg",
        {"name": "tcp2"},
        400,
        "'tcp2' is already applied in the 'farm 'web''",
    )
    zcli.fails(
        "POST",
        "/farms/web/fg",
        {"name": "check_tcp"},
        400,
        "The 'farm 'web'' has already linked a farm guardian",
    )
    assert zcli.ok("GET", "/farms/web")["params"]["farmguardian"] == "tcp2"
    zcli.fails(
        "PUT",
        "/monitoring/fg/tcp2",
        {"command": "check_tcp -H HOST -p PORT -t 3"},
        400,
        "Farm guardian 'tcp2' is running in: 'web'. To apply, send parameter 'force'",
    )
    zcli.ok(
        "PUT", "/monitoring/fg/tcp2", {"command": "check_tcp -H HOST -p PORT -t 3", "force": "true"}
    )
    zcli.fails(
        "DELETE",
        "/monitoring/fg/tcp2",
        None,
        400,
        "It is not possible delete farm guardian 'tcp2' because it is running in: 'web'",
    )
    zcli.fails(
        "DELETE",
        "/farms/web/fg/check_tcp",
        None,
        400,
        "The farm guardian 'check_tcp' is not applied to the 'farm 'web''",
    )
    removed = zcli.ok("DELETE", "/farms/web/fg/tcp2")
    assert removed == {
        "description": "Remove the farm guardian 'tcp2' from the 'farm 'web''",
        "message": "Success, 'tcp2' was removed from the 'farm 'web''",
        "status": "up",
    }
    assert zcli.ok("GET", "/farms/web")["params"]["farmguardian"] is None
    # A check that cannot run here is refused when linked, not left to fail every backend.
    zcli.ok("POST", "/monitoring/fg", {"name": "blank"})
    response = zcli.call("POST", "/farms/web/fg", {"name": "blank"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("There was an error trying to add 'blank'")


# -- stats --------------------------------------------------------------------------------------


def test_statistics(zcli: Zcli) -> None:
    make_farm(zcli)
    add_backend(zcli)
    farms = zcli.ok("GET", "/stats/farms")["farms"]
    assert [f["farmname"] for f in farms] == ["web"]
    assert zcli.ok("GET", "/stats/farms/web") == {
        "backends": [
            {
                "established": 0,
                "id": 0,
                "ip": BACKEND,
                "max_conns": 0,
                "pending": 0,
                "port": 8080,
                "priority": 1,
                "status": "up",
                "weight": 1,
            }
        ],
        "description": "Get farm stats",
        "sessions": [],
        "total_sessions": 0,
    }
    zcli.fails("GET", "/stats/farms/nope", None, 400, "The farmname nope does not exist.")
    zcli.ok("PUT", "/farms/web/actions", {"action": "stop"})
    stopped = zcli.ok("GET", "/stats/farms/web")
    assert (stopped["backends"], stopped["sessions"], stopped["total_sessions"]) == ([], [], 0)
    system = zcli.ok("GET", "/stats")
    assert set(system["params"]) == {"cpu", "date", "hostname", "load", "memory", "network"}


# -- network ----------------------------------------------------------------------------------


def test_network_and_virtual_interfaces(zcli: Zcli) -> None:
    listed = zcli.ok("GET", "/interfaces")
    eth0 = next(i for i in listed["interfaces"] if i["name"] == "eth0")
    assert eth0 == {
        "gateway": GATEWAY,
        "has_vlan": "false",
        "ip": ETH0_IP,
        "is_slave": "false",
        "mac": ETH0_MAC,
        "name": "eth0",
        "netmask": "255.255.255.0",
        "status": "up",
        "type": "nic",
    }
    assert (
        help_names(zcli.fails("POST", "/interfaces/virtual", {}, 400, HELP))["ip"]["format"]
        == "ip_addr"
    )
    zcli.fails(
        "POST",
        "/interfaces/virtual",
        {"name": "eth0:v1", "ip": "198.18.4"},
        400,
        "The parameter 'ip' has not a valid value.",
    )
    created = zcli.ok("POST", "/interfaces/virtual", {"name": "eth0:v1", "ip": VIRTUAL_IP}, 201)
    assert created["message"] == "The eth0:v1 Virtual interface has been created successfully"
    assert zcli.ok("GET", "/interfaces/virtual")["interfaces"][0]["name"] == "eth0:v1"
    assert zcli.ok("GET", "/interfaces/virtual/eth0:v1")["interface"]["status"] == "up"

    # A farm on the virtual address: moving it needs `force`, and then the farm moves along.
    zcli.ok(
        "POST",
        "/farms",
        {"farmname": "web", "profile": "l4xnat", "vip": VIRTUAL_IP, "vport": "80"},
        201,
    )
    zcli.fails(
        "PUT",
        "/interfaces/virtual/eth0:v1",
        {"ip": "198.18.4.21"},
        400,
        "The IP is being used as farm vip in the farm(s): web. If you are sure, repeat with "
        "parameter 'force'. All farms using this interface will be restarted.",
    )
    zcli.fails(
        "PUT",
        "/interfaces/virtual/eth0:v1",
        {"ip": "198.18.4.21", "force": "false"},
        400,
        "The parameter 'force' expects one of the following values: 'true'",
    )
    moved = zcli.ok("PUT", "/interfaces/virtual/eth0:v1", {"ip": "198.18.4.21", "force": "true"})
    assert moved["message"] == "The eth0:v1 Virtual interface has been updated successfully"
    assert zcli.ok("GET", "/farms/web")["params"]["vip"] == "198.18.4.21"
    zcli.fails(
        "PUT",
        "/interfaces/virtual/eth0:nope",
        {"ip": "198.18.4.22"},
        404,
        "Virtual interface not found",
    )

    down = zcli.ok("POST", "/interfaces/virtual/eth0:v1/actions", {"action": "down"})
    assert down == {
        "description": "Action on virtual interface",
        "message": "The eth0:v1 Virtual interface is down",
        "params": {"action": "down"},
    }
    assert zcli.ok("GET", "/interfaces/virtual/eth0:v1")["interface"]["status"] == "down"
    zcli.ok("POST", "/interfaces/virtual/eth0:v1/actions", {"action": "up"})
    assert zcli.ok("GET", "/interfaces/virtual/eth0:v1")["interface"]["status"] == "up"

    zcli.fails(
        "DELETE",
        "/interfaces/virtual/eth0:v1",
        None,
        400,
        "This interface is being used as farm vip in the farm(s): web.",
    )
    zcli.ok("DELETE", "/farms/web")
    deleted = zcli.ok("DELETE", "/interfaces/virtual/eth0:v1")
    assert deleted["message"] == "The virtual interface eth0:v1 has been deleted."
    zcli.fails(
        "DELETE",
        "/interfaces/virtual/eth0:v1",
        None,
        400,
        "The virtual interface eth0:v1 doesn't exist.",
    )
