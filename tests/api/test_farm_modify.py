"""PUT /farms/NAME (reference §4.6; zapi31.md §1 "Values accepted on l4xnat farms", all-or-nothing,
ignored keys)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.nft.fake import FakeNftAdapter

from .builders import (
    NOT_LOCAL,
    VIP,
    VIP6,
    VIP_ALIAS,
    Serve,
    TestClient,
    add_backend,
    backend,
    create_farm,
    error,
    expect,
    farm_action,
    farm_detail,
    get_farm,
    url,
)

DESC = "Modify L4xNAT farm 'web'"


def modified(echo: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return {"description": f"Modify L4xNAT farm '{name}'", "params": echo}


@pytest.mark.parametrize(
    ("body", "echo", "params"),
    [
        *[
            ({"algorithm": a}, {"algorithm": a}, {"algorithm": a})
            for a in (
                "weight",
                "roundrobin",
                "hash_srcip",
                "hash_srcip_srcport",
                "symhash",
                "leastconn",
            )
        ],
        *[
            ({"persistence": given}, {"persistence": given}, {"persistence": stored})
            for given, stored in [
                ("", ""),
                ("none", ""),
                ("ip", "ip"),
                ("srcip", "ip"),
                ("srcport", "srcport"),
                ("srcmac", "srcmac"),
                ("srcip_srcport", "srcip_srcport"),
                ("srcip_dstport", "srcip_dstport"),
            ]
        ],
        ({"protocol": "tcp"}, {"protocol": "tcp"}, {}),
        ({"protocol": "udp"}, {"protocol": "udp"}, {"protocol": "udp"}),
        ({"protocol": "sctp"}, {"protocol": "sctp"}, {"protocol": "sctp"}),
        # "all" clears the ports, and says so in the echo.
        ({"protocol": "all"}, {"protocol": "all", "vport": "*"}, {"protocol": "all", "vport": "*"}),
        (
            {"protocol": "all", "vport": 81},
            {"protocol": "all", "vport": "*"},
            {"protocol": "all", "vport": "*"},
        ),
        ({"nattype": "nat"}, {"nattype": "nat"}, {}),
        ({"nattype": "dnat"}, {"nattype": "dnat"}, {"nattype": "dnat"}),
        ({"ttl": 30}, {"ttl": 30}, {"ttl": 30}),
        ({"ttl": "30"}, {"ttl": 30}, {"ttl": 30}),
        ({"ttl": 1}, {"ttl": 1}, {"ttl": 1}),
        ({"ttl": 86400}, {"ttl": 86400}, {"ttl": 86400}),
        ({"vip": VIP_ALIAS}, {"vip": VIP_ALIAS}, {"vip": VIP_ALIAS}),
        ({"vip": VIP6}, {"vip": VIP6}, {"vip": VIP6}),
        ({"vport": 81}, {"vport": 81}, {"vport": 81}),
        ({"vport": "8080"}, {"vport": "8080"}, {"vport": 8080}),
        ({"vport": "80,443"}, {"vport": "80,443"}, {"vport": "80,443"}),
        ({"vport": "1000:2000"}, {"vport": "1000:2000"}, {"vport": "1000:2000"}),
        ({"vport": "*"}, {"vport": "*"}, {"vport": "*"}),
        (
            {"algorithm": "leastconn", "persistence": "srcip", "ttl": "120", "vport": "443"},
            {"algorithm": "leastconn", "persistence": "srcip", "ttl": 120, "vport": "443"},
            {"algorithm": "leastconn", "persistence": "ip", "ttl": 120, "vport": 443},
        ),
    ],
)
def test_modify_a_field(
    client: TestClient,
    nft: FakeNftAdapter,
    body: dict[str, Any],
    echo: dict[str, Any],
    params: dict[str, Any],
) -> None:
    create_farm(client)
    expect(client.put(url("/farms/web"), json=body), 200, modified(echo))
    expect(client.get(url("/farms/web")), 200, farm_detail(**params))


def test_changes_reach_the_kernel(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    add_backend(client)
    batches = len(nft.batches)
    state = copy.deepcopy(nft.state)
    expect(client.put(url("/farms/web"), json={"vport": 81}), 200, modified({"vport": 81}))
    assert len(nft.batches) == batches + 1
    assert nft.state != state


def test_prio_algorithm_is_gone(client: TestClient) -> None:
    create_farm(client)
    response = client.put(url("/farms/web"), json={"algorithm": "prio"})
    expect(response, 410, error(DESC, "Not supported anymore."))
    expect(client.get(url("/farms/web")), 200, farm_detail())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"algorithm": ""}, "Invalid algorithm, can't be blank."),
        ({"algorithm": "foo"}, "Invalid algorithm."),
        ({"algorithm": "Weight"}, "Invalid algorithm."),
        ({"algorithm": "rr"}, "Invalid algorithm."),
        ({"algorithm": 1}, "Invalid algorithm."),
        ({"algorithm": True}, "Invalid algorithm."),
        ({"algorithm": ["weight"]}, "Invalid algorithm."),
        ({"algorithm": {"name": "weight"}}, "Invalid algorithm."),
        ({"persistence": "foo"}, "Invalid persistence."),
        ({"persistence": "IP"}, "Invalid persistence."),
        ({"persistence": "srcip srcport"}, "Invalid persistence."),
        ({"persistence": 1}, "Invalid persistence."),
        ({"persistence": False}, "Invalid persistence."),
        ({"persistence": ["ip"]}, "Invalid persistence."),
        ({"protocol": ""}, "Invalid protocol, can't be blank."),
        ({"protocol": "gopher"}, "Invalid protocol."),
        ({"protocol": "TCP"}, "Invalid protocol."),
        ({"protocol": "icmp"}, "Invalid protocol."),
        ({"protocol": 6}, "Invalid protocol."),
        ({"protocol": "h323"}, "Invalid protocol."),
        ({"protocol": "FTP"}, "Invalid protocol."),
        ({"protocol": ["tcp"]}, "Invalid protocol."),
        ({"protocol": {"name": "tcp"}}, "Invalid protocol."),
        ({"nattype": ""}, "Invalid nattype, can't be blank."),
        ({"nattype": "snat"}, "Invalid nattype."),
        ({"nattype": "NAT"}, "Invalid nattype."),
        ({"nattype": "local"}, "Invalid nattype."),
        ({"nattype": 1}, "Invalid nattype."),
        ({"nattype": {"mode": "nat"}}, "Invalid nattype."),
        ({"ttl": ""}, "Invalid ttl, can't be blank."),
        ({"ttl": 0}, "Invalid ttl."),
        ({"ttl": "0"}, "Invalid ttl."),
        ({"ttl": -1}, "Invalid ttl."),
        ({"ttl": "-1"}, "Invalid ttl."),
        ({"ttl": 1.5}, "Invalid ttl."),
        ({"ttl": 30.0}, "Invalid ttl."),
        ({"ttl": "30s"}, "Invalid ttl."),
        ({"ttl": " 30"}, "Invalid ttl."),
        ({"ttl": "\uff13\uff10"}, "Invalid ttl."),
        ({"ttl": True}, "Invalid ttl."),
        ({"ttl": [30]}, "Invalid ttl."),
        ({"ttl": "99999999999999999999"}, "Invalid ttl."),
        ({"ttl": 10**20}, "Invalid ttl."),
        ({"ttl": 2**63}, "Invalid ttl."),
        ({"vip": ""}, "Invalid vip, can't be blank."),
        ({"vip": "1.2.3"}, "Invalid vip."),
        ({"vip": "198.18.0.010"}, "Invalid vip."),
        ({"vip": 1}, "Invalid vip."),
        ({"vip": [VIP]}, "Invalid vip."),
        ({"vip": NOT_LOCAL}, "The vip IP must exist in some interface."),
        ({"vport": ""}, "Invalid vport, can't be blank."),
        ({"vport": "abc"}, "Invalid vport."),
        ({"vport": 0}, "Invalid vport."),
        ({"vport": 65536}, "Invalid vport."),
        ({"vport": -1}, "Invalid vport."),
        ({"vport": "80,80"}, "Invalid vport."),
        ({"vport": "2000:1000"}, "Invalid vport."),
        ({"vport": 80.0}, "Invalid vport."),
        ({"vport": True}, "Invalid vport."),
        ({"vport": [80]}, "Invalid vport."),
        ({"newfarmname": ""}, "Invalid newfarmname, can't be blank."),
        ({"newfarmname": "new farm"}, "Invalid newfarmname."),
        ({"newfarmname": "new_farm"}, "Invalid newfarmname."),
        ({"newfarmname": 5}, "Invalid newfarmname."),
        ({"newfarmname": ["new"]}, "Invalid newfarmname."),
        ({"newfarmname": "new"}, "Cannot change the farm name while running"),
    ],
)
def test_modify_errors(
    client: TestClient, nft: FakeNftAdapter, body: dict[str, Any], message: str
) -> None:
    create_farm(client)
    batches = len(nft.batches)
    expect(client.put(url("/farms/web"), json=body), 400, error(DESC, message))
    expect(client.get(url("/farms/web")), 200, farm_detail())
    assert len(nft.batches) == batches


HELPERS = ["ftp", "tftp", "sip", "irc", "pptp", "sane", "amanda", "snmp", "netbios-ns"]


@pytest.mark.parametrize("protocol", HELPERS)
def test_helper_protocols_the_kernel_supports_are_accepted(
    client: TestClient, protocol: str
) -> None:
    create_farm(client)
    response = client.put(url("/farms/web"), json={"protocol": protocol})
    expect(response, 200, modified({"protocol": protocol}))
    expect(client.get(url("/farms/web")), 200, farm_detail(protocol=protocol))


class KernelWithFtpOnly(FakeNftAdapter):
    def supported_helpers(self) -> frozenset[str]:
        return frozenset({"ftp"})


@pytest.mark.parametrize("protocol", ["sip", "tftp"])
def test_a_helper_the_kernel_lacks_is_refused_saying_so(serve: Serve, protocol: str) -> None:
    with serve(nft=KernelWithFtpOnly()) as client:
        create_farm(client)
        expect(
            client.put(url("/farms/web"), json={"protocol": "ftp"}),
            200,
            modified({"protocol": "ftp"}),
        )
        response = client.put(url("/farms/web"), json={"protocol": protocol})
        message = (
            f"The protocol '{protocol}' needs the kernel's {protocol} conntrack helper, "
            "which this kernel does not provide."
        )
        expect(response, 400, error(DESC, message))
        assert get_farm(client)["params"]["protocol"] == "ftp"


@pytest.mark.parametrize("nattype", ["dsr", "stateless_dnat"])
def test_every_nattype_of_the_spec_is_accepted(client: TestClient, nattype: str) -> None:
    create_farm(client)
    expect(
        client.put(url("/farms/web"), json={"nattype": nattype}),
        200,
        modified({"nattype": nattype}),
    )
    expect(client.get(url("/farms/web")), 200, farm_detail(nattype=nattype))


def test_modify_missing_farm_is_404(client: TestClient) -> None:
    response = client.put(url("/farms/nope"), json={"ttl": 30})
    expect(response, 404, error("Modify farm", "The farmname nope does not exist."))


def test_empty_body_changes_nothing(client: TestClient) -> None:
    create_farm(client)
    expect(client.put(url("/farms/web"), json={}), 200, modified({}))
    expect(client.get(url("/farms/web")), 200, farm_detail())


# -- all or nothing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"algorithm": "roundrobin", "persistence": "ip", "ttl": "x"}, 400, "Invalid ttl."),
        (
            {"ttl": 30, "vport": 81, "vip": NOT_LOCAL},
            400,
            "The vip IP must exist in some interface.",
        ),
        ({"vip": VIP_ALIAS, "vport": "nope"}, 400, "Invalid vport."),
        ({"protocol": "udp", "nattype": "bogus"}, 400, "Invalid nattype."),
        ({"ttl": 30, "persistence": "ip", "algorithm": "prio"}, 410, "Not supported anymore."),
        ({"protocol": "all", "persistence": "sticky"}, 400, "Invalid persistence."),
    ],
)
def test_one_bad_field_changes_nothing(
    client: TestClient, nft: FakeNftAdapter, body: dict[str, Any], status: int, message: str
) -> None:
    create_farm(client)
    add_backend(client)
    before = get_farm(client)
    batches, state = len(nft.batches), copy.deepcopy(nft.state)
    expect(client.put(url("/farms/web"), json=body), status, error(DESC, message))
    assert get_farm(client) == before
    assert len(nft.batches) == batches
    assert nft.state == state


def test_a_rename_with_a_bad_field_does_not_rename(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    farm_action(client, "web", "stop")
    batches = len(nft.batches)
    response = client.put(url("/farms/web"), json={"newfarmname": "new", "vport": "bad"})
    expect(response, 400, error(DESC, "Invalid vport."))
    expect(client.get(url("/farms/web")), 200, farm_detail(status="down"))
    expect(client.get(url("/farms/new")), 404, error("Show farm new", "Farm not found."))
    assert len(nft.batches) == batches


# -- keys that do not apply ----------------------------------------------------------------


def go_update_farm_body() -> dict[str, Any]:
    """What konsorten/zevenet-lb-go UpdateFarm sends: the whole FarmDetails object."""
    return {
        "farmname": "web",
        "certlist": None,
        "cipherc": "",
        "ciphers": "",
        "contimeout": 0,
        "disable_sslv2": "",
        "disable_sslv3": "",
        "disable_tlsv1": "",
        "disable_tlsv1_1": "",
        "disable_tlsv1_2": "",
        "error414": "",
        "error500": "",
        "error501": "",
        "error503": "",
        "httpverb": "",
        "listener": "l4xnat",
        "reqtimeout": 0,
        "restimeout": 0,
        "resurrectime": 0,
        "rewritelocation": "",
        "status": "up",
        "vip": VIP,
        "vport": 80,
        "services": None,
        "backends": [{"id": 0, "ip": "192.0.2.1", "port": 8080, "status": "up"}],
        "fgenabled": "false",
        "profile": "l4xnat",
    }


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(go_update_farm_body(), id="go-client-farm-details"),
        pytest.param(
            {
                "newfarmname": None,
                "algorithm": None,
                "persistence": None,
                "protocol": None,
                "nattype": None,
                "ttl": None,
                "vip": None,
                "vport": None,
            },
            id="known-keys-null",
        ),
        pytest.param({"newfarmname": "web"}, id="same-name-while-running"),
        pytest.param({"foo": {"bar": [1, 2]}, "services": [], "x": None}, id="unknown-keys"),
    ],
)
def test_keys_that_do_not_apply_are_ignored_and_echoed(
    client: TestClient, body: dict[str, Any]
) -> None:
    create_farm(client)
    add_backend(client)
    before = get_farm(client)
    expect(client.put(url("/farms/web"), json=body), 200, modified(body))
    assert get_farm(client) == before


def test_known_keys_apply_next_to_ignored_ones(client: TestClient) -> None:
    create_farm(client)
    body = {**go_update_farm_body(), "vport": 8080, "ttl": "45"}
    expect(client.put(url("/farms/web"), json=body), 200, modified({**body, "ttl": 45}))
    expect(client.get(url("/farms/web")), 200, farm_detail(vport=8080, ttl=45))


# -- vip, vport and collisions -------------------------------------------------------------


def test_vip_family_must_match_the_backends(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)
    message = (
        "Invalid vip: a farm's backends share its IP family, and this farm's backends are IPv4."
    )
    expect(client.put(url("/farms/web"), json={"vip": VIP6}), 400, error(DESC, message))


def test_moving_onto_a_running_farm_is_refused(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="other", vport=443)
    batches = len(nft.batches)
    response = client.put(url("/farms/other"), json={"vport": "80,443"})
    message = f"The virtual IP and port {VIP} 80,443 (tcp) overlap with the running farm 'web'."
    expect(response, 400, error("Modify L4xNAT farm 'other'", message))
    assert len(nft.batches) == batches
    assert get_farm(client, "other")["params"]["vport"] == 443


def test_a_stopped_farm_may_move_onto_a_running_one(client: TestClient) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="other", vport=443)
    farm_action(client, "other", "stop")
    expect(
        client.put(url("/farms/other"), json={"vport": 80}), 200, modified({"vport": 80}, "other")
    )
    expect(client.get(url("/farms/other")), 200, farm_detail("other", status="down"))


# -- rename --------------------------------------------------------------------------------


def test_rename_a_stopped_farm(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)
    farm_action(client, "web", "stop")
    body = {"newfarmname": "new", "ttl": 90}
    # The description keeps the old name; later fields apply to the renamed farm.
    expect(client.put(url("/farms/web"), json=body), 200, modified(body))
    expected = farm_detail("new", status="down", ttl=90, backends=[backend(0)])
    expect(client.get(url("/farms/new")), 200, expected)
    expect(client.get(url("/farms/web")), 404, error("Show farm web", "Farm not found."))
    assert farm_action(client, "new", "start") == {"action": "start", "status": "up"}


def test_rename_onto_an_existing_farm_is_refused(client: TestClient) -> None:
    create_farm(client, name="web", vport=80)
    create_farm(client, name="other", vport=81)
    farm_action(client, "web", "stop")
    response = client.put(url("/farms/web"), json={"newfarmname": "other"})
    expect(response, 400, error(DESC, "The farm other already exists, try another name."))
    assert get_farm(client, "web")["params"]["status"] == "down"


def test_rename_while_running_is_refused(client: TestClient) -> None:
    create_farm(client)
    response = client.put(url("/farms/web"), json={"newfarmname": "new"})
    expect(response, 400, error(DESC, "Cannot change the farm name while running"))
    expect(client.get(url("/farms/web")), 200, farm_detail())
