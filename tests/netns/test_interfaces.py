"""Virtual interfaces in a real namespace (issue 6): created through the API as a labelled
address on a link, a farm serves traffic on it, deleting it is refused while the farm uses it,
and a restart puts it back when the kernel lost it.
"""

from __future__ import annotations

import json

import pytest

from .kernlb import Api, KernlbServer
from .topology import LB_CLIENT_SIDE_IP, Topology, sh
from .traffic import Client

pytestmark = pytest.mark.netns

PARENT = "v-c"  # the LB's link towards the clients: 198.18.1.254/24
VIRTUAL_IP = "198.18.1.200"
OTHER_IP = "198.18.1.201"


def labelled(topo: Topology) -> set[tuple[str, int, str]]:
    """(address, prefix length, label) of the virtual interfaces on the parent link."""
    out = sh(["ip", "-n", topo.lb, "-j", "-4", "addr", "show", "dev", PARENT]).stdout
    return {
        (a["local"], a["prefixlen"], a.get("label", PARENT))
        for link in json.loads(out)
        for a in link.get("addr_info", [])
        if a.get("label", PARENT) != PARENT
    }


def mac_of(topo: Topology) -> str:
    out = sh(["ip", "-n", topo.lb, "-j", "link", "show", "dev", PARENT]).stdout
    mac: str = json.loads(out)[0]["address"]
    return mac


def test_a_farm_on_a_virtual_interface(topo: Topology, api: Api, client: Client) -> None:
    body = {"name": f"{PARENT}:vip1", "ip": VIRTUAL_IP}
    created = api.request("POST", "/interfaces/virtual", body).expect(201)
    assert created == {
        "description": "Add a virtual interface",
        "params": {
            "gateway": "",
            "ip": VIRTUAL_IP,
            "mac": mac_of(topo),
            "name": f"{PARENT}:vip1",
            "netmask": "255.255.255.0",
        },
    }
    assert labelled(topo) == {(VIRTUAL_IP, 24, f"{PARENT}:vip1")}
    shown = api.request("GET", f"/interfaces/virtual/{PARENT}:vip1").expect(200)
    assert shown["interface"]["status"] == "up"
    nics = api.request("GET", "/interfaces/nic").expect(200)["interfaces"]
    assert {"name": PARENT, "ip": LB_CLIENT_SIDE_IP, "netmask": "255.255.255.0"}.items() <= next(
        n for n in nics if n["name"] == PARENT
    ).items()
    assert "lo" not in {n["name"] for n in nics}

    farm = api.create_farm("web", vip=VIRTUAL_IP, vport="80")
    assert farm["params"]["interface"] == f"{PARENT}:vip1"
    api.add_backend("web", "198.18.2.1", port=80)
    assert client.hello(VIRTUAL_IP, 80).backend == "b1"

    refused = api.request("DELETE", f"/interfaces/virtual/{PARENT}:vip1")
    assert (refused.status, refused.body) == (
        400,
        {
            "description": "Delete virtual interface",
            "error": "true",
            "message": f"The virtual interface {PARENT}:vip1 is the VIP of the farm(s) web; "
            "delete those farms or change their vip first.",
        },
    )
    assert labelled(topo) == {(VIRTUAL_IP, 24, f"{PARENT}:vip1")}
    assert client.hello(VIRTUAL_IP, 80).backend == "b1"

    api.delete_farm("web")
    api.request("DELETE", f"/interfaces/virtual/{PARENT}:vip1").expect(200)
    assert labelled(topo) == set()
    missing = api.request("GET", f"/interfaces/virtual/{PARENT}:vip1")
    assert missing.status == 404 and "not found" in missing.body["message"]
    assert api.request("GET", "/interfaces/virtual").expect(200)["interfaces"] == []


def test_virtual_interfaces_are_restored_at_start_up(
    topo: Topology, api: Api, client: Client, kernlb: KernlbServer
) -> None:
    api.request("POST", f"/interfaces/virtual/{PARENT}:vip2", {"ip": OTHER_IP}).expect(201)
    api.create_farm("web", vip=OTHER_IP, vport="80")
    api.add_backend("web", "198.18.2.2", port=80)
    assert client.hello(OTHER_IP, 80).backend == "b2"

    kernlb.stop()
    # As after a reboot: the kernel no longer holds the address.
    sh(["ip", "-n", topo.lb, "addr", "del", f"{OTHER_IP}/24", "dev", PARENT])
    assert labelled(topo) == set()
    kernlb.start()
    assert labelled(topo) == {(OTHER_IP, 24, f"{PARENT}:vip2")}
    assert client.hello(OTHER_IP, 80).backend == "b2"
    body = api.request("GET", "/interfaces/virtual").expect(200)
    assert [(i["name"], i["status"]) for i in body["interfaces"]] == [(f"{PARENT}:vip2", "up")]
