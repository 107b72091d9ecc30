"""POST /farms, GET /farms, GET /farms/NAME[/summary], farm status (reference §4.2-4.5,
zapi31.md §1 "JSON types", "Port collisions", "Profiles other than l4xnat")."""

from __future__ import annotations

from typing import Any

import pytest

from .builders import (
    VIP,
    VIP6,
    VIP_ALIAS,
    TestClient,
    add_backend,
    create_farm,
    error,
    expect,
    farm_action,
    farm_body,
    farm_detail,
    get_farm,
    list_farms,
    list_item,
    set_maintenance,
    url,
)

NAME_MSG = "The farm name is required to have alphabet letters, numbers or hypens (-) only."
EXISTS_MSG = "Error trying to create a new farm, the farm name already exists."
PROFILE_MSG = "The farm's profile is not supported."
VIP_INVALID_MSG = "Invalid vip."
VIP_NOT_LOCAL_MSG = "The vip IP must exist in some interface."
VPORT_MSG = "The virtual port must be an acceptable value and must be available."


def created(
    name: str = "web",
    *,
    interface: str = "eth0",
    profile: str = "l4xnat",
    vip: str = VIP,
    vport: int | str = 80,
) -> dict[str, Any]:
    params = {
        "farmname": name,
        "interface": interface,
        "profile": profile,
        "vip": vip,
        "vport": vport,
    }
    return {"description": f"Creating farm '{name}'", "params": params}


def overlap_msg(vip: str, vport: str, protocol: str, other: str) -> str:
    return (
        f"The virtual IP and port {vip} {vport} ({protocol}) overlap with the running farm "
        f"'{other}'."
    )


# -- create --------------------------------------------------------------------------------


@pytest.mark.parametrize("vport", [80, "80"], ids=["int", "digit-string"])
def test_create_farm(client: TestClient, vport: int | str) -> None:
    response = client.post(url("/farms"), json=farm_body(vport=vport))
    expect(response, 201, created())
    # Go decodes GET /farms/NAME vport as an int and GET /farms vport as a string.
    expect(client.get(url("/farms/web")), 200, farm_detail())
    expect(client.get(url("/farms")), 200, {"description": "List farms", "params": [list_item()]})


@pytest.mark.parametrize(
    ("vip", "interface"), [(VIP, "eth0"), (VIP_ALIAS, "eth0:vip1"), (VIP6, "eth0")]
)
def test_create_reports_the_interface_holding_the_vip(
    client: TestClient, vip: str, interface: str
) -> None:
    response = client.post(url("/farms"), json=farm_body(vip=vip))
    expect(response, 201, created(vip=vip, interface=interface))
    expect(client.get(url("/farms/web")), 200, farm_detail(vip=vip))


def test_vip_is_stored_in_canonical_form(client: TestClient) -> None:
    response = client.post(url("/farms"), json=farm_body(vip="2001:0002:0:0::0010"))
    expect(response, 201, created(vip=VIP6))


@pytest.mark.parametrize(
    ("vport", "protocol"),
    [
        ("80,443", "tcp"),
        ("1000:2000", "tcp"),
        ("80,8080:8090", "tcp"),
        ("1,65535", "tcp"),
        ("*", "all"),
    ],
)
def test_multiport_vport_reads_back_as_a_string(
    client: TestClient, vport: str, protocol: str
) -> None:
    expect(client.post(url("/farms"), json=farm_body(vport=vport)), 201, created(vport=vport))
    expect(client.get(url("/farms/web")), 200, farm_detail(vport=vport, protocol=protocol))
    assert list_farms(client) == [list_item(vport=vport)]


@pytest.mark.parametrize("profile", ["l4xnat", "L4XNAT", "L4xNAT"])
def test_profile_is_case_insensitive_and_echoed_as_given(client: TestClient, profile: str) -> None:
    response = client.post(url("/farms"), json=farm_body(profile=profile))
    expect(response, 201, created(profile=profile))
    assert list_farms(client) == [list_item()]


@pytest.mark.parametrize("name", ["a", "Web-01", "123", "-", "x" * 300])
def test_farm_names(client: TestClient, name: str) -> None:
    expect(client.post(url("/farms"), json=farm_body(name=name)), 201, created(name))
    expect(client.get(url(f"/farms/{name}")), 200, farm_detail(name))


def test_farm_names_are_case_sensitive(client: TestClient) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="WEB", vport=81)
    assert [f["farmname"] for f in list_farms(client)] == ["WEB", "web"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # 1. name format
        ({"farmname": None}, NAME_MSG),
        ({"farmname": ""}, NAME_MSG),
        ({"farmname": "we b"}, NAME_MSG),
        ({"farmname": " web"}, NAME_MSG),
        ({"farmname": "wéb"}, NAME_MSG),
        ({"farmname": "\uff57\uff45\uff42"}, NAME_MSG),
        ({"farmname": "web_1"}, NAME_MSG),
        ({"farmname": "web.1"}, NAME_MSG),
        ({"farmname": "web/1"}, NAME_MSG),
        ({"farmname": "web;rm"}, NAME_MSG),
        ({"farmname": 123}, NAME_MSG),
        ({"farmname": True}, NAME_MSG),
        ({"farmname": ["web"]}, NAME_MSG),
        ({"farmname": {"name": "web"}}, NAME_MSG),
        ({"farmname": "web\n"}, NAME_MSG),
        # 3. profile (2. "exists" has its own test)
        ({"profile": None}, PROFILE_MSG),
        ({"profile": ""}, PROFILE_MSG),
        ({"profile": "l4"}, PROFILE_MSG),
        ({"profile": "l4xnat "}, PROFILE_MSG),
        ({"profile": 4}, PROFILE_MSG),
        ({"profile": ["l4xnat"]}, PROFILE_MSG),
        # 4. vip
        ({"vip": None}, VIP_INVALID_MSG),
        ({"vip": ""}, VIP_INVALID_MSG),
        ({"vip": "198.18.0.010"}, VIP_INVALID_MSG),
        ({"vip": "198.18.0"}, VIP_INVALID_MSG),
        ({"vip": "198.18.0.256"}, VIP_INVALID_MSG),
        ({"vip": "198.18.0.10/32"}, VIP_INVALID_MSG),
        ({"vip": "eth0"}, VIP_INVALID_MSG),
        ({"vip": 3323068426}, VIP_INVALID_MSG),
        ({"vip": ["198.18.0.10"]}, VIP_INVALID_MSG),
        ({"vip": "203.0.113.10"}, VIP_NOT_LOCAL_MSG),
        ({"vip": "2001:2::11"}, VIP_NOT_LOCAL_MSG),
        ({"vip": "127.0.0.1"}, VIP_NOT_LOCAL_MSG),
        # 5. vport
        ({"vport": None}, VPORT_MSG),
        ({"vport": ""}, VPORT_MSG),
        ({"vport": 0}, VPORT_MSG),
        ({"vport": "0"}, VPORT_MSG),
        ({"vport": 65536}, VPORT_MSG),
        ({"vport": "65536"}, VPORT_MSG),
        ({"vport": -80}, VPORT_MSG),
        ({"vport": "-80"}, VPORT_MSG),
        ({"vport": 10**30}, VPORT_MSG),
        ({"vport": 80.0}, VPORT_MSG),
        ({"vport": 80.5}, VPORT_MSG),
        ({"vport": True}, VPORT_MSG),
        ({"vport": [80]}, VPORT_MSG),
        ({"vport": {"port": 80}}, VPORT_MSG),
        ({"vport": "abc"}, VPORT_MSG),
        ({"vport": "080"}, VPORT_MSG),
        ({"vport": "\uff18\uff10"}, VPORT_MSG),
        ({"vport": "80,"}, VPORT_MSG),
        ({"vport": ",80"}, VPORT_MSG),
        ({"vport": "80, 443"}, VPORT_MSG),
        ({"vport": "80;443"}, VPORT_MSG),
        ({"vport": "80-90"}, VPORT_MSG),
        ({"vport": "90:80"}, VPORT_MSG),
        ({"vport": "80,80"}, VPORT_MSG),
        ({"vport": "80,70:90"}, VPORT_MSG),
        ({"vport": "*,80"}, VPORT_MSG),
        ({"vport": "**"}, VPORT_MSG),
        ({"vport": " 80 "}, VPORT_MSG),
    ],
)
def test_create_farm_errors(client: TestClient, body: dict[str, Any], message: str) -> None:
    request = {**farm_body(), **body}
    name = request["farmname"]
    description = f"Creating farm '{name if isinstance(name, str) else ''}'"
    expect(client.post(url("/farms"), json=request), 400, error(description, message))
    expect(client.get(url("/farms")), 200, {"description": "List farms", "params": []})


def test_missing_keys_are_refused_in_validation_order(client: TestClient) -> None:
    expect(client.post(url("/farms"), json={}), 400, error("Creating farm ''", NAME_MSG))
    for body, message in [
        ({"farmname": "web"}, PROFILE_MSG),
        ({"farmname": "web", "profile": "l4xnat"}, VIP_INVALID_MSG),
        ({"farmname": "web", "profile": "l4xnat", "vip": VIP}, VPORT_MSG),
    ]:
        expect(client.post(url("/farms"), json=body), 400, error("Creating farm 'web'", message))


def test_an_existing_name_is_refused_before_anything_else(client: TestClient) -> None:
    create_farm(client, vport=80)
    body = farm_body(profile="nope", vip="nope", vport="nope")
    expect(client.post(url("/farms"), json=body), 400, error("Creating farm 'web'", EXISTS_MSG))
    # Same body as the existing farm (kubermatic re-POSTs after a failed GET): still 4xx.
    expect(
        client.post(url("/farms"), json=farm_body()), 400, error("Creating farm 'web'", EXISTS_MSG)
    )
    expect(client.get(url("/farms/web")), 200, farm_detail())


@pytest.mark.parametrize("profile", ["https", "gslb", "datalink"])
def test_other_profiles_are_refused_clearly(client: TestClient, profile: str) -> None:
    message = (
        f"The farm profile '{profile}' is not supported by kernlb yet; "
        "only l4xnat and http farms can be created (https: an http farm with listener https)."
    )
    response = client.post(url("/farms"), json=farm_body(profile=profile))
    expect(response, 400, error("Creating farm 'web'", message))


# -- port collisions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vport", "shown"),
    [(80, "80"), ("80,443", "80,443"), ("70:90", "70:90"), ("1:65535", "1:65535")],
)
def test_overlap_with_a_running_farm_names_it(
    client: TestClient, vport: int | str, shown: str
) -> None:
    create_farm(client, name="web", vport=80)
    response = client.post(url("/farms"), json=farm_body(name="other", vport=vport))
    message = overlap_msg(VIP, shown, "tcp", "web")
    expect(response, 400, error("Creating farm 'other'", message))
    assert list_farms(client) == [list_item("web")]


def test_two_all_ports_farms_on_one_vip_overlap(client: TestClient) -> None:
    create_farm(client, name="any", vport="*")
    response = client.post(url("/farms"), json=farm_body(name="other", vport="*"))
    expect(response, 400, error("Creating farm 'other'", overlap_msg(VIP, "*", "all", "any")))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"vport": 80}, {"vport": 81}),
        ({"vport": "80,443"}, {"vport": "81:442"}),
        ({"vport": 80}, {"vport": 80, "vip": VIP_ALIAS}),
        ({"vport": 80}, {"vport": 80, "vip": VIP6}),
        # A wildcard-port farm and a specific-port farm on one VIP do not conflict.
        ({"vport": "*"}, {"vport": 80}),
        ({"vport": 80}, {"vport": "*"}),
    ],
)
def test_farms_that_do_not_overlap(
    client: TestClient, first: dict[str, Any], second: dict[str, Any]
) -> None:
    create_farm(client, name="one", **first)
    create_farm(client, name="two", **second)
    assert [item["farmname"] for item in list_farms(client)] == ["one", "two"]


def test_overlap_depends_on_the_protocol(client: TestClient) -> None:
    create_farm(client, name="dns", vport=53)
    client.put(url("/farms/dns"), json={"protocol": "udp"})
    create_farm(client, name="dnstcp", vport=53)  # tcp: no clash with the udp farm
    response = client.put(url("/farms/dns"), json={"protocol": "tcp"})
    message = overlap_msg(VIP, "53", "tcp", "dnstcp")
    expect(response, 400, error("Modify L4xNAT farm 'dns'", message))


def test_overlapping_a_stopped_farm_is_allowed_but_it_cannot_start(client: TestClient) -> None:
    create_farm(client, name="web")
    assert farm_action(client, "web", "stop") == {"action": "stop", "status": "down"}
    create_farm(client, name="other")
    response = client.put(url("/farms/web/actions"), json={"action": "start"})
    message = "Error trying to set the action start in farm web. " + overlap_msg(
        VIP, "80", "tcp", "other"
    )
    expect(response, 400, error("Farm actions", message))
    assert list_farms(client) == [list_item("other"), list_item("web", status="down")]
    response = client.put(url("/farms/web/actions"), json={"action": "restart"})
    message = "Error trying to set the action restart in farm web. " + overlap_msg(
        VIP, "80", "tcp", "other"
    )
    expect(response, 400, error("Farm actions", message))
    assert get_farm(client, "web")["params"]["status"] == "down"


# -- read ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/summary"])
def test_get_farm_and_summary(client: TestClient, suffix: str) -> None:
    create_farm(client, vport="80,443")
    add_backend(client, ip="192.0.2.1", port=8080)
    add_backend(client, ip="192.0.2.2", port=None, weight=5, priority=2, max_conns=100)
    expected = farm_detail(
        vport="80,443",
        status="up",
        backends=[
            {
                "id": 0,
                "ip": "192.0.2.1",
                "max_conns": 0,
                "port": 8080,
                "priority": 1,
                "status": "up",
                "weight": 1,
            },
            {
                "id": 1,
                "ip": "192.0.2.2",
                "max_conns": 100,
                "port": None,
                "priority": 2,
                "status": "up",
                "weight": 5,
            },
        ],
    )
    expect(client.get(url(f"/farms/web{suffix}")), 200, expected)


@pytest.mark.parametrize("suffix", ["", "/summary"])
@pytest.mark.parametrize("name", ["nope", "WEB", "web-"])
def test_get_missing_farm_is_404(client: TestClient, suffix: str, name: str) -> None:
    create_farm(client, name="web")
    response = client.get(url(f"/farms/{name}{suffix}"))
    expect(response, 404, error(f"Show farm {name}", "Farm not found."))


def test_list_farms_sorted_by_name_with_string_vports(client: TestClient) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="any", vport="*", vip=VIP_ALIAS)
    create_farm(client, name="multi", vport="443,8000:8080")
    create_farm(client, name="v6", vport="80", vip=VIP6)
    farm_action(client, "multi", "stop")
    add_backend(client, "web")
    expected = [
        list_item("any", vip=VIP_ALIAS, vport="*"),
        list_item("multi", status="down", vport="443,8000:8080"),
        list_item("v6", vip=VIP6),
        list_item("web", status="up"),
    ]
    expect(client.get(url("/farms")), 200, {"description": "List farms", "params": expected})
    response = client.get(url("/farms/modules/lslb"))
    expect(response, 200, {"description": "List LSLB farms", "params": expected})


# -- status --------------------------------------------------------------------------------


def test_farm_status_values(client: TestClient) -> None:
    def status() -> str:
        detail = get_farm(client)["params"]["status"]
        (listed,) = [item["status"] for item in list_farms(client)]
        assert detail == listed
        return str(detail)

    create_farm(client)
    assert status() == "critical"  # running, no backends
    add_backend(client, ip="192.0.2.1")
    assert status() == "up"
    add_backend(client, ip="192.0.2.2")
    assert set_maintenance(client, "web", 1).status_code == 200
    assert status() == "maintenance"  # one up, one in maintenance
    assert set_maintenance(client, "web", 0).status_code == 200
    assert status() == "critical"  # none up
    farm_action(client, "web", "stop")
    assert status() == "down"
    farm_action(client, "web", "start")
    assert status() == "critical"
    assert set_maintenance(client, "web", 0, action="up").status_code == 200
    assert set_maintenance(client, "web", 1, action="up").status_code == 200
    assert status() == "up"
