"""One data model under two API versions: what 3.1 writes reads right through 4.0 and back,
farmguardian included (zapi40-l4.md §4.4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.net.links import StaticLinks
from app.nft.fake import FakeNftAdapter

from .builders import BASE_V40, Serve, TestClient, url
from .fakes import ETH0_IP

VIP = ETH0_IP
BACKEND = "198.18.4.50"
MIGRATED = "This farmguardian was created automatically to migrate to ZEVENET 5.2 version or higher"


@pytest.fixture
def both(serve: Serve, nft: FakeNftAdapter, links: StaticLinks) -> Iterator[TestClient]:
    with serve(nft=nft, addresses=links) as client:
        yield client


def v40(path: str) -> str:
    return BASE_V40 + path


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_farm_made_through_31_reads_through_40_and_back(both: TestClient) -> None:
    ok(
        both.post(
            url("/farms"), json={"farmname": "web", "profile": "l4xnat", "vip": VIP, "vport": 80}
        ),
        201,
    )
    ok(both.post(url("/farms/web/backends"), json={"ip": BACKEND, "port": 8080, "weight": 3}), 201)
    ok(
        both.put(
            url("/farms/web"), json={"algorithm": "hash_srcip", "persistence": "ip", "ttl": 30}
        )
    )
    ok(
        both.put(
            url("/farms/web/fg"),
            json={"fgenabled": "true", "fgscript": "check_tcp -H HOST -p PORT", "fgtimecheck": 7},
        )
    )

    four = ok(both.get(v40("/farms/web")))
    assert four["params"] == {
        "algorithm": "hash_srcip",
        "farmguardian": "_default_web",
        "listener": "l4xnat",
        "nattype": "nat",
        "persistence": "ip",
        "protocol": "tcp",
        "sessions": [],
        "status": "up",
        "ttl": 30,
        "vip": VIP,
        "vport": 80,
    }
    three = ok(both.get(url("/farms/web")))
    assert four["backends"] == three["backends"]
    fg = ok(both.get(v40("/monitoring/fg/_default_web")))["params"]
    assert (fg["command"], fg["interval"], fg["farms"], fg["description"]) == (
        "check_tcp -H HOST -p PORT",
        7,
        ["web"],
        MIGRATED,
    )

    # And back: what 4.0 changes, 3.1 reads.
    ok(both.put(v40("/farms/web"), json={"algorithm": "leastconn", "ttl": "90"}))
    ok(both.put(v40("/farms/web/backends/0"), json={"weight": "4"}))
    three = ok(both.get(url("/farms/web")))
    assert (three["params"]["algorithm"], three["params"]["ttl"]) == ("leastconn", 90)
    assert three["backends"][0]["weight"] == 4
    ok(both.put(v40("/monitoring/fg/_default_web"), json={"interval": "11", "force": "true"}))
    assert ok(both.get(url("/farms/web")))["params"]["fgtimecheck"] == 11


def test_a_check_linked_through_40_shows_in_31_fields(both: TestClient) -> None:
    ok(
        both.post(
            url("/farms"), json={"farmname": "web", "profile": "l4xnat", "vip": VIP, "vport": 80}
        ),
        201,
    )
    fresh = ok(both.get(url("/farms/web")))["params"]
    assert (fresh["fgenabled"], fresh["fgscript"], fresh["fgtimecheck"]) == ("false", "", 5)

    ok(both.post(v40("/farms/web/fg"), json={"name": "check_http"}))
    params = ok(both.get(url("/farms/web")))["params"]
    assert (params["fgenabled"], params["fgscript"], params["fgtimecheck"], params["fglog"]) == (
        "true",
        "check_http -I HOST -p PORT -e 200 -t 5",
        15,
        "false",
    )
    # The template was copied on its first write, and keeps template "true".
    tpl = ok(both.get(v40("/monitoring/fg/check_http")))["params"]
    assert (tpl["template"], tpl["farms"]) == ("true", ["web"])

    # A 3.1 write replaces the link with `_default_web`, from the merged values.
    ok(both.put(url("/farms/web/fg"), json={"fglog": "true"}))
    assert ok(both.get(v40("/farms/web")))["params"]["farmguardian"] == "_default_web"
    default = ok(both.get(v40("/monitoring/fg/_default_web")))["params"]
    assert (default["command"], default["log"], default["template"]) == (
        "check_http -I HOST -p PORT -e 200 -t 5",
        "true",
        "false",
    )
    assert ok(both.get(v40("/monitoring/fg/check_http")))["params"]["farms"] == []

    # 3.1 turns it off: nothing linked, `_default_web` stays as the v3.1 values' home.
    ok(both.put(url("/farms/web/fg"), json={"fgenabled": "false"}))
    assert ok(both.get(v40("/farms/web")))["params"]["farmguardian"] is None
    after = ok(both.get(url("/farms/web")))["params"]
    assert (after["fgenabled"], after["fgscript"]) == (
        "false",
        "check_http -I HOST -p PORT -e 200 -t 5",
    )
    ids = ok(both.get(v40("/ids")))["params"]
    assert "_default_web" in ids["farmguardians"]
    assert "fg" not in ids["farms"]["web"]["services"]["default_service"]


def test_31_does_not_modify_a_check_other_farms_share(both: TestClient) -> None:
    for name, port in (("a", 80), ("b", 81)):
        ok(
            both.post(
                url("/farms"),
                json={"farmname": name, "profile": "l4xnat", "vip": VIP, "vport": port},
            ),
            201,
        )
        ok(both.post(v40(f"/farms/{name}/fg"), json={"name": "check_tcp"}))
    refused = both.put(url("/farms/a/fg"), json={"fgtimecheck": 3})
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "Farm guardian check_tcp is used for several farms, modify it from API 3.2 or later"
    )
    # Through 4.0 the shared object changes for both farms at once.
    ok(both.put(v40("/monitoring/fg/check_tcp"), json={"interval": "4"}))
    for name in ("a", "b"):
        assert ok(both.get(url(f"/farms/{name}")))["params"]["fgtimecheck"] == 4
    # Deleting a farm unlinks it.
    ok(both.delete(url("/farms/a")))
    assert ok(both.get(v40("/monitoring/fg/check_tcp")))["params"]["farms"] == ["b"]


# -- the v3.1 interface routes zcli and the Go client call ----------------------------------------


def test_31_virtual_interface_modify_actions_and_list(both: TestClient) -> None:
    ok(both.post(url("/interfaces/virtual"), json={"name": "eth0:v1", "ip": "198.18.4.20"}), 201)
    listed = ok(both.get(url("/interfaces")))
    assert listed["description"] == "List interfaces"
    assert [(i["name"], i["type"]) for i in listed["interfaces"]] == [
        ("eth0", "nic"),
        ("eth1", "nic"),
        ("eth0:v1", "virtual"),
    ]

    def fails(response: Any, status: int, message: str) -> None:
        assert (response.status_code, response.json()["message"]) == (status, message)

    fails(
        both.put(url("/interfaces/virtual/eth0:no"), json={"ip": "198.18.4.21"}),
        404,
        "Virtual interface not found",
    )
    fails(both.put(url("/interfaces/virtual/eth0:v1"), json={}), 400, "Not found any param.")
    fails(
        both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": "198.18.4.21", "x": 1}),
        400,
        "Illegal params: x",
    )
    fails(
        both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": "1.2.3"}),
        400,
        "IP Address 1.2.3 structure is not ok.",
    )
    fails(
        both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": ETH0_IP}),
        400,
        "The IP address is already in use for other interface.",
    )
    fails(
        both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": "203.0.113.1"}),
        400,
        "IP address 203.0.113.1 must be on the same network than the parent interface.",
    )
    changed = ok(both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": "198.18.4.21"}))
    assert changed == {"description": "Modify virtual interface", "params": {"ip": "198.18.4.21"}}
    assert ok(both.get(url("/interfaces/virtual/eth0:v1")))["interface"]["ip"] == "198.18.4.21"

    # A farm on it: 3.1 has no `force`, so the change is refused rather than strand the farm.
    ok(
        both.post(
            url("/farms"),
            json={"farmname": "web", "profile": "l4xnat", "vip": "198.18.4.21", "vport": 80},
        ),
        201,
    )
    refused = both.put(url("/interfaces/virtual/eth0:v1"), json={"ip": "198.18.4.22"})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith(
        "The IP is being used as farm vip in the farm(s): web."
    )

    fails(
        both.post(url("/interfaces/virtual/eth0:v1/actions"), json={"action": "sideways"}),
        400,
        "Action accepted values are: up or down",
    )
    fails(
        both.post(url("/interfaces/virtual/eth0:v1/actions"), json={"action": "up", "x": "1"}),
        400,
        "Only the parameter 'action' is accepted",
    )
    fails(
        both.post(url("/interfaces/virtual/eth0:no/actions"), json={"action": "up"}),
        404,
        "Virtual interface not found",
    )
    assert ok(both.post(url("/interfaces/virtual/eth0:v1/actions"), json={"action": "down"})) == {
        "description": "Action on virtual interface",
        "params": {"action": "down"},
    }
    assert ok(both.get(url("/interfaces/virtual/eth0:v1")))["interface"]["status"] == "down"
    ok(both.post(url("/interfaces/virtual/eth0:v1/actions"), json={"action": "up"}))
    assert ok(both.get(url("/interfaces/virtual/eth0:v1")))["interface"]["status"] == "up"
