"""GET /interfaces/nic and virtual interfaces: GET/POST /interfaces/virtual, GET/POST/DELETE
/interfaces/virtual/NAME (reference §2.3, §10.1: what the Go client and kubermatic call)."""

from __future__ import annotations

from typing import Any

import pytest

from app.net.links import Address, Link, StaticLinks
from app.nft.fake import FakeNftAdapter

from .builders import Serve, TestClient, error, expect, url
from .fakes import ETH0_IP, ETH0_MAC, ETH1_MAC, GATEWAY, host_links

ADD = "Add a virtual interface"
DELETE = "Delete virtual interface"
VIRTUAL_IP = "198.18.4.20"


@pytest.fixture
def iclient(serve: Serve, nft: FakeNftAdapter, links: StaticLinks) -> Any:
    """The app with the fake links as its address book too: farms see virtual interfaces."""
    with serve(nft=nft, addresses=links) as client:
        yield client


def created(name: str = "eth0:vip1", ip: str = VIRTUAL_IP) -> dict[str, Any]:
    params = {
        "gateway": GATEWAY,
        "ip": ip,
        "mac": ETH0_MAC,
        "name": name,
        "netmask": "255.255.255.0",
    }
    return {"description": ADD, "params": params}


def detail(name: str = "eth0:vip1", ip: str = VIRTUAL_IP, status: str = "up") -> dict[str, Any]:
    return {
        "gateway": GATEWAY,
        "ip": ip,
        "mac": ETH0_MAC,
        "name": name,
        "netmask": "255.255.255.0",
        "status": status,
    }


def create(client: TestClient, name: str = "eth0:vip1", ip: str = VIRTUAL_IP) -> None:
    expect(
        client.post(url("/interfaces/virtual"), json={"ip": ip, "name": name}),
        201,
        created(name, ip),
    )


def labelled(links: StaticLinks) -> set[tuple[str, str, str, int]]:
    return {(a.link, a.label, a.ip, a.prefixlen) for a in links.addresses() if a.label != a.link}


# -- NICs ----------------------------------------------------------------------------------


def test_list_nics(iclient: TestClient) -> None:
    expect(
        iclient.get(url("/interfaces/nic")),
        200,
        {
            "description": "List NIC interfaces",
            "interfaces": [
                {
                    "gateway": GATEWAY,
                    "has_vlan": "false",
                    "ip": ETH0_IP,
                    "mac": ETH0_MAC,
                    "name": "eth0",
                    "netmask": "255.255.255.0",
                    "status": "up",
                },
                {
                    "gateway": "",
                    "has_vlan": "false",
                    "ip": "",
                    "mac": ETH1_MAC,
                    "name": "eth1",
                    "netmask": "",
                    "status": "down",
                },
            ],
        },
    )


def test_nic_with_a_vlan_says_so_and_the_vlan_is_no_nic(
    serve: Serve, nft: FakeNftAdapter, links: StaticLinks
) -> None:
    links.link_list.append(Link(name="eth0.10", mac=ETH0_MAC, up=True, kind="vlan", parent="eth0"))
    with serve(nft=nft, addresses=links) as client:
        nics = client.get(url("/interfaces/nic")).json()["interfaces"]
    assert [(n["name"], n["has_vlan"]) for n in nics] == [("eth0", "true"), ("eth1", "false")]


# -- virtual interfaces: life cycle ----------------------------------------------------------


def test_virtual_interface_life_cycle(iclient: TestClient, links: StaticLinks) -> None:
    expect(
        iclient.get(url("/interfaces/virtual")),
        200,
        {"description": "List virtual interfaces", "interfaces": []},
    )
    create(iclient)
    assert labelled(links) == {("eth0", "eth0:vip1", VIRTUAL_IP, 24)}
    expect(
        iclient.get(url("/interfaces/virtual")),
        200,
        {"description": "List virtual interfaces", "interfaces": [{**detail(), "parent": "eth0"}]},
    )
    expect(
        iclient.get(url("/interfaces/virtual/eth0:vip1")),
        200,
        {"description": "Show virtual interface eth0:vip1", "interface": detail()},
    )

    # A farm on its address reports the virtual interface, and keeps it from being deleted.
    farm = {"farmname": "web", "profile": "l4xnat", "vip": VIRTUAL_IP, "vport": 80}
    response = iclient.post(url("/farms"), json=farm)
    assert response.status_code == 201, response.text
    assert response.json()["params"]["interface"] == "eth0:vip1"
    message = (
        "The virtual interface eth0:vip1 is the VIP of the farm(s) web; "
        "delete those farms or change their vip first."
    )
    expect(iclient.delete(url("/interfaces/virtual/eth0:vip1")), 400, error(DELETE, message))
    assert labelled(links) == {("eth0", "eth0:vip1", VIRTUAL_IP, 24)}

    assert iclient.delete(url("/farms/web")).status_code == 200
    expect(
        iclient.delete(url("/interfaces/virtual/eth0:vip1")),
        200,
        {
            "description": DELETE,
            "message": "The virtual interface eth0:vip1 has been deleted.",
            "success": "true",
        },
    )
    assert labelled(links) == set()
    # The Go client treats a message containing "not found" as "absent".
    expect(
        iclient.get(url("/interfaces/virtual/eth0:vip1")),
        404,
        error("Show virtual interface eth0:vip1", "Virtual interface not found."),
    )
    expect(
        iclient.delete(url("/interfaces/virtual/eth0:vip1")),
        404,
        error(DELETE, "Virtual interface not found."),
    )
    # The farm can no longer be created on the address.
    response = iclient.post(url("/farms"), json=farm)
    assert response.status_code == 400
    assert response.json()["message"] == "The vip IP must exist in some interface."


def test_delete_refusal_names_every_farm_on_the_address(iclient: TestClient) -> None:
    create(iclient)
    for name, vport in (("b-farm", 80), ("a-farm", 443)):
        body = {"farmname": name, "profile": "l4xnat", "vip": VIRTUAL_IP, "vport": vport}
        assert iclient.post(url("/farms"), json=body).status_code == 201
    assert iclient.put(url("/farms/a-farm/actions"), json={"action": "stop"}).status_code == 200
    message = (
        "The virtual interface eth0:vip1 is the VIP of the farm(s) a-farm, b-farm; "
        "delete those farms or change their vip first."
    )
    expect(iclient.delete(url("/interfaces/virtual/eth0:vip1")), 400, error(DELETE, message))


def test_create_with_the_name_in_the_path(iclient: TestClient, links: StaticLinks) -> None:
    response = iclient.post(url("/interfaces/virtual/eth0:web"), json={"ip": VIRTUAL_IP})
    expect(response, 201, created("eth0:web"))
    response = iclient.post(
        url("/interfaces/virtual/eth0:two"), json={"ip": "198.18.4.21", "name": "eth0:two"}
    )
    expect(response, 201, created("eth0:two", "198.18.4.21"))
    response = iclient.post(
        url("/interfaces/virtual/eth0:three"), json={"ip": "198.18.4.22", "name": "eth0:other"}
    )
    expect(response, 400, error(ADD, "The name in the body differs from the one in the path."))
    assert {a[1] for a in labelled(links)} == {"eth0:web", "eth0:two"}


def test_go_client_flow(iclient: TestClient) -> None:
    """kubermatic: GET (absent) → POST {ip, name} → GET; the fields the Go client parses."""
    response = iclient.get(url("/interfaces/virtual/eth0:k8s"))
    assert response.status_code == 404 and "not found" in response.json()["message"]
    assert (
        iclient.post(
            url("/interfaces/virtual"), json={"ip": VIRTUAL_IP, "name": "eth0:k8s"}
        ).status_code
        == 201
    )
    interface = iclient.get(url("/interfaces/virtual/eth0:k8s")).json()["interface"]
    assert set(interface) == {"ip", "netmask", "gateway", "mac", "name", "status"}
    assert all(isinstance(v, str) for v in interface.values())
    items = iclient.get(url("/interfaces/virtual")).json()["interfaces"]
    assert {"ip", "parent", "netmask", "gateway", "mac", "name", "status"} == set(items[0])


# -- virtual interfaces: refusals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Interface name is not valid"),
        ({"name": "", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": 7, "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": "eth0", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": "eth0:", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": "eth0:a:b", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": "eth0:a-b", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": ":vip", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        ({"name": "eth0:vip\n", "ip": VIRTUAL_IP}, "Interface name is not valid"),
        (
            {"name": "eth0:abcdefghijk", "ip": VIRTUAL_IP},
            "Virtual interface name has a maximum length of 15 characters",
        ),
        ({"name": "eth0:vip1"}, "IP Address is not valid."),
        ({"name": "eth0:vip1", "ip": ""}, "IP Address is not valid."),
        ({"name": "eth0:vip1", "ip": 3232235777}, "IP Address is not valid."),
        ({"name": "eth0:vip1", "ip": "198.18.4.020"}, "IP Address is not valid."),
        ({"name": "eth0:vip1", "ip": "2001:2::20"}, "IP Address is not valid."),
        ({"name": "eth9:vip1", "ip": VIRTUAL_IP}, "The parent interface eth9 doesn't exist."),
        ({"name": "eth1:vip1", "ip": VIRTUAL_IP}, "The parent interface eth1 doesn't exist."),
        ({"name": "eth0:vip1", "ip": ETH0_IP}, f"IP Address {ETH0_IP} is already in use."),
        ({"name": "eth0:vip1", "ip": "127.0.0.1"}, "IP Address 127.0.0.1 is already in use."),
        (
            {"name": "eth0:vip1", "ip": "198.18.5.20"},
            "IP Address 198.18.5.20 must be same net than the parent interface.",
        ),
        ({"name": "eth0:vip1", "ip": "198.18.4.0"}, "IP Address is not valid."),
        ({"name": "eth0:vip1", "ip": "198.18.4.255"}, "IP Address is not valid."),
    ],
)
def test_create_refusals(
    iclient: TestClient, links: StaticLinks, body: dict[str, Any], message: str
) -> None:
    before = links.addresses()
    expect(iclient.post(url("/interfaces/virtual"), json=body), 400, error(ADD, message))
    assert links.addresses() == before
    assert iclient.get(url("/interfaces/virtual")).json()["interfaces"] == []


def test_name_and_address_must_be_free(iclient: TestClient) -> None:
    create(iclient)
    response = iclient.post(
        url("/interfaces/virtual"), json={"name": "eth0:vip1", "ip": "198.18.4.21"}
    )
    expect(response, 400, error(ADD, "Network interface eth0:vip1 already exists."))
    response = iclient.post(
        url("/interfaces/virtual"), json={"name": "eth0:vip2", "ip": VIRTUAL_IP}
    )
    expect(response, 400, error(ADD, f"IP Address {VIRTUAL_IP} is already in use."))


def test_a_label_made_outside_kernlb_is_not_taken_over(
    serve: Serve, nft: FakeNftAdapter, links: StaticLinks
) -> None:
    links.address_list.append(
        Address(link="eth0", label="eth0:ops", ip="198.18.4.99", prefixlen=24)
    )
    with serve(nft=nft, addresses=links) as client:
        response = client.post(
            url("/interfaces/virtual"), json={"name": "eth0:ops", "ip": VIRTUAL_IP}
        )
        expect(response, 400, error(ADD, "Network interface eth0:ops already exists."))
        # Not managed by kernlb: not listed, and not deleted through the API.
        assert client.get(url("/interfaces/virtual")).json()["interfaces"] == []
        expect(
            client.delete(url("/interfaces/virtual/eth0:ops")),
            404,
            error(DELETE, "Virtual interface not found."),
        )


def test_a_refused_kernel_change_leaves_nothing_behind(
    iclient: TestClient, links: StaticLinks
) -> None:
    links.fail_next = "RTNETLINK answers: Operation not permitted"
    response = iclient.post(
        url("/interfaces/virtual"), json={"name": "eth0:vip1", "ip": VIRTUAL_IP}
    )
    expect(response, 400, error(ADD, "The eth0:vip1 virtual network interface can't be created"))
    assert labelled(links) == set()
    assert iclient.get(url("/interfaces/virtual")).json()["interfaces"] == []
    create(iclient)  # and nothing stands in the way afterwards


def test_a_refused_removal_keeps_the_interface(iclient: TestClient, links: StaticLinks) -> None:
    create(iclient)
    links.fail_next = "RTNETLINK answers: Operation not permitted"
    response = iclient.delete(url("/interfaces/virtual/eth0:vip1"))
    expect(response, 400, error(DELETE, "The virtual interface eth0:vip1 can't be deleted"))
    assert iclient.get(url("/interfaces/virtual/eth0:vip1")).status_code == 200
    assert labelled(links) == {("eth0", "eth0:vip1", VIRTUAL_IP, 24)}


# -- status and restoring ------------------------------------------------------------------------


def test_status_is_down_when_the_address_or_the_parent_is_gone(
    iclient: TestClient, links: StaticLinks
) -> None:
    create(iclient)
    links.address_list = [a for a in links.address_list if a.label != "eth0:vip1"]
    interface = iclient.get(url("/interfaces/virtual/eth0:vip1")).json()["interface"]
    assert interface == detail(status="down")


def test_virtual_interfaces_are_restored_at_start_up(serve: Serve, links: StaticLinks) -> None:
    with serve(nft=FakeNftAdapter(), addresses=links) as client:
        create(client)
        create(client, "eth0:vip2", "198.18.4.21")
    # A reboot: the kernel forgot every address that kernlb added.
    links.address_list = host_links().address_list
    with serve(nft=FakeNftAdapter(), addresses=links) as client:
        assert labelled(links) == {
            ("eth0", "eth0:vip1", VIRTUAL_IP, 24),
            ("eth0", "eth0:vip2", "198.18.4.21", 24),
        }
        names = [i["name"] for i in client.get(url("/interfaces/virtual")).json()["interfaces"]]
        assert names == ["eth0:vip1", "eth0:vip2"]
    # Restoring twice adds nothing twice.
    with serve(nft=FakeNftAdapter(), addresses=links):
        assert len(labelled(links)) == 2
