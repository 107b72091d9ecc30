"""IPDS API: lists and sources, DoS rules, farm attachments; the kernel objects they become
(fake kernel); bad input is a ZAPI 400/404 naming the field, with the kernel unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.nft.fake import FakeNftAdapter

from .builders import TestClient, create_farm, error, expect, get_farm, url

JSON = Any
RULES = "bogustcpflags, limitconns, limitrst, limitsec, limitfarmsec"


def _post(client: TestClient, path: str, body: JSON, status: int = 201) -> JSON:
    response = client.post(url(path), json=body)
    assert response.status_code == status, response.text
    result: JSON = response.json()
    return result


def _farm_id(nft: FakeNftAdapter) -> int:
    chains = [name for name in nft.state.chains if name.startswith("inet/i-")]
    assert len(chains) == 1, chains
    return int(chains[0].removeprefix("inet/i-"))


def _kernel(nft: FakeNftAdapter) -> JSON:
    return copy.deepcopy(
        (nft.state.chains, {k: (v.kind, v.elements) for k, v in nft.state.sets.items()})
    )


def test_list_lifecycle_and_single_element_changes(client: TestClient, nft: FakeNftAdapter) -> None:
    created = _post(client, "/ipds/blacklists", {"name": "bad", "type": "local", "policy": "deny"})
    assert created == {
        "description": "Post list bad",
        "params": {
            "name": "bad",
            "type": "local",
            "policy": "deny",
            "status": "up",
            "preload": "false",
            "farms": [],
            "sources": 0,
        },
    }
    added = _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.5.0/24"})
    assert added == {
        "description": "Post source to bad.",
        "message": "Added 198.18.5.0/24 successful.",
        "params": {"id": 0, "source": "198.18.5.0/24"},
    }
    _post(client, "/ipds/blacklists/bad/sources", {"source": "2001:2::1"})
    _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.9.9"})
    # Overlapping sources are fine: each prefix length has its own set.
    _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.5.7"})
    batches_before = len(nft.batches)
    _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.9.10"})
    # One source = one element command, nothing else.
    assert nft.batches[batches_before:] == [
        [
            {
                "add": {
                    "element": {
                        "family": "inet",
                        "table": "kernlb",
                        "name": "l-1-4-32",
                        "elem": ["198.18.9.10"],
                    }
                }
            }
        ]
    ]
    assert set(nft.elements("l-1-4-24")) == {"198.18.5.0"}
    assert set(nft.elements("l-1-4-32")) == {"198.18.9.9", "198.18.5.7", "198.18.9.10"}
    assert set(nft.elements("l-1-6-128")) == {"2001:2::1"}
    shown = client.get(url("/ipds/blacklists/bad")).json()["params"]["sources"]
    assert shown == [
        {"id": 0, "source": "198.18.5.0/24"},
        {"id": 1, "source": "2001:2::1"},
        {"id": 2, "source": "198.18.9.9"},
        {"id": 3, "source": "198.18.5.7"},
        {"id": 4, "source": "198.18.9.10"},
    ]
    response = client.delete(url("/ipds/blacklists/bad/sources/2"))
    expect(
        response,
        200,
        {
            "description": "Delete source from the list bad",
            "success": "true",
            "message": "Source 2 has been deleted successful.",
        },
    )
    assert nft.batches[-1] == [
        {
            "delete": {
                "element": {
                    "family": "inet",
                    "table": "kernlb",
                    "name": "l-1-4-32",
                    "elem": ["198.18.9.9"],
                }
            }
        }
    ]
    # The last /24 gone: its set goes.
    assert client.delete(url("/ipds/blacklists/bad/sources/0")).status_code == 200
    assert "inet/l-1-4-24" not in nft.state.sets
    expect(
        client.delete(url("/ipds/blacklists/bad")),
        200,
        {
            "description": "Delete list 'bad'",
            "success": "true",
            "message": "The list bad has been deleted successful.",
        },
    )
    assert not any(name.startswith("inet/l-1-") for name in nft.state.sets)


def test_attach_list_and_dos_renders_the_farm_path(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    _post(client, "/ipds/blacklists", {"name": "bad", "policy": "deny"})
    _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.1.0/29"})
    _post(client, "/ipds/blacklists", {"name": "good", "policy": "allow"})
    _post(client, "/ipds/blacklists/good/sources", {"source": "198.18.1.8/29"})
    _post(client, "/ipds/dos", {"name": "persec", "rule": "limitsec"})
    response = client.put(
        url("/ipds/dos/persec"), json={"limit": "5", "limit_burst": 5, "meter_size": 16}
    )
    assert response.status_code == 200, response.text
    assert response.json()["params"] == {
        "name": "persec",
        "rule": "limitsec",
        "type": "farm",
        "status": "up",
        "description": "Connection limit per second.",
        "farms": [],
        "limit": 5,
        "limit_burst": 5,
        "meter_size": 16,
        "overflow_limit": 0,
        "overflow_burst": 0,
    }
    expect(
        client.post(url("/farms/web/ipds/blacklists"), json={"name": "bad"}),
        200,
        {
            "description": "Apply a rule to a farm",
            "success": "true",
            "message": "Blacklist rule bad was applied successful to the farm web.",
        },
    )
    _post(client, "/farms/web/ipds/blacklists", {"name": "good"}, 200)
    _post(client, "/farms/web/ipds/dos", {"name": "persec"}, 200)
    farm_id = _farm_id(nft)
    assert get_farm(client)["ipds"] == {
        "blacklists": [{"name": "bad", "status": "up"}, {"name": "good", "status": "up"}],
        "dos": [{"name": "persec", "status": "up"}],
        "rbl": [],
        "waf": [],
    }
    rules = nft.rules(f"i-{farm_id}")
    text = str(rules)
    assert len(rules) == 4  # whitelist, blacklist, per-source limit, aggregate limit
    assert "@l-2-4-29" in text and "@l-1-4-29" in text and f"@m-{farm_id}-1" in text
    assert set(nft.elements("idisp4")) == {'{"concat":["tcp","192.0.2.10",80]}'} or nft.elements(
        "idisp4"
    )
    assert nft.state.sets[f"inet/m-{farm_id}-1"].decl["size"] == 16
    stats = client.get(url("/stats/farms/web")).json()
    assert stats["ipds"] == {
        "blacklists": [
            {"name": "bad", "policy": "deny", "packets": 0, "bytes": 0},
            {"name": "good", "policy": "allow", "packets": 0, "bytes": 0},
        ],
        "dos": [{"name": "persec", "rule": "limitsec", "packets": 0, "bytes": 0}],
    }
    hooks = client.event_hooks["response"]
    client.event_hooks["response"] = []  # /metrics is text, not a ZAPI JSON answer
    metrics = client.get("/metrics").text
    client.event_hooks["response"] = hooks
    assert (
        'kernlb_ipds_dropped_packets_total{farm="web",kind="list",name="bad",rule="deny"} 0.0'
        in metrics
    )
    # in use: refused
    response = client.delete(url("/ipds/blacklists/bad"))
    expect(
        response,
        400,
        error("Delete list 'bad'", "Delete this list from all farms before than delete it."),
    )
    expect(
        client.delete(url("/farms/web/ipds/dos/persec")),
        200,
        {
            "description": "Unset the DoS rule persec from the farm web",
            "success": "true",
            "message": "DoS rule persec was removed successful from the farm web.",
        },
    )
    client.delete(url("/farms/web/ipds/blacklists/bad"))
    client.delete(url("/farms/web/ipds/blacklists/good"))
    assert not any(
        name.startswith(("inet/i-", "inet/m-", "inet/x-", "inet/idisp")) for name in nft.state.sets
    )
    assert "inet/ipds" not in nft.state.chains
    assert "ipds" not in get_farm(client)


def test_deleting_a_farm_removes_its_ipds(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    _post(client, "/ipds/dos", {"name": "flags", "rule": "bogustcpflags"})
    _post(client, "/farms/web/ipds/dos", {"name": "flags"}, 200)
    assert client.delete(url("/farms/web")).status_code == 200
    assert client.get(url("/ipds/dos/flags")).json()["params"]["farms"] == []
    assert client.delete(url("/ipds/dos/flags")).status_code == 200
    assert not any(name.startswith("inet/i-") for name in nft.state.chains)


BAD = [
    (
        "POST",
        "/ipds/blacklists",
        {"name": "x", "policy": "block"},
        "Create a blacklist.",
        "The parameter policy has not a valid value.",
    ),
    (
        "POST",
        "/ipds/blacklists",
        {"name": "x", "type": "remote"},
        "Create a blacklist.",
        "The parameter type has not a valid value.",
    ),
    (
        "POST",
        "/ipds/blacklists",
        {"policy": "deny"},
        "Create a blacklist.",
        "The required parameter name is missing.",
    ),
    (
        "POST",
        "/ipds/blacklists",
        {"name": "bad name"},
        "Create a blacklist.",
        "The parameter name has not a valid value.",
    ),
    (
        "POST",
        "/ipds/blacklists",
        {"name": "x", "color": 1},
        "Create a blacklist.",
        "The parameter color is not valid.",
    ),
    (
        "POST",
        "/ipds/blacklists/bad/sources",
        {"source": "198.18.0.300"},
        "Post source to bad.",
        "The parameter source has not a valid value: '198.18.0.300' is not an IP address "
        "or a CIDR network (host bits clear).",
    ),
    (
        "POST",
        "/ipds/blacklists/bad/sources",
        {"source": "198.18.0.1/24"},
        "Post source to bad.",
        "The parameter source has not a valid value: '198.18.0.1/24' is not an IP address "
        "or a CIDR network (host bits clear).",
    ),
    (
        "POST",
        "/ipds/blacklists/bad/sources",
        {"source": "198.18.7.0/24"},
        "Post source to bad.",
        "198.18.7.0/24 already exists in the list.",
    ),
    (
        "PUT",
        "/ipds/blacklists/bad",
        {"sources": ["10.0.0.0/8", "10.0.0.0/8"]},
        "Modify list bad.",
        "The parameter sources has not a valid value: a source is repeated.",
    ),
    (
        "POST",
        "/ipds/dos",
        {"name": "d2", "rule": "synflood"},
        "Create the DoS rule synflood",
        "The parameter rule has not a valid value: unknown rule 'synflood'; the rules are "
        f"{RULES}.",
    ),
    (
        "POST",
        "/ipds/dos",
        {"name": "d2", "rule": "dropicmp"},
        "Create the DoS rule dropicmp",
        "The parameter rule has not a valid value: dropicmp is a system rule; kernlb's farm "
        f"rules are {RULES}.",
    ),
    (
        "POST",
        "/ipds/dos",
        {"name": "rules", "rule": "limitsec"},
        "Create the DoS rule limitsec",
        "The name is not valid, it is a reserved word.",
    ),
    (
        "PUT",
        "/ipds/dos/persec",
        {"limit": 0},
        "Modify the DoS rule persec",
        "The parameter limit has not a valid value.",
    ),
    (
        "PUT",
        "/ipds/dos/persec",
        {"limit": 10**9},
        "Modify the DoS rule persec",
        "The parameter limit has not a valid value.",
    ),
    (
        "PUT",
        "/ipds/dos/persec",
        {"limit": True},
        "Modify the DoS rule persec",
        "The parameter limit has not a valid value.",
    ),
    (
        "PUT",
        "/ipds/dos/persec",
        {"meter_size": 10**9},
        "Modify the DoS rule persec",
        "The parameter meter_size has not a valid value.",
    ),
    (
        "PUT",
        "/ipds/dos/persec",
        {"limit_conns": 5},
        "Modify the DoS rule persec",
        "The parameter limit_conns does not apply to the rule limitsec.",
    ),
    (
        "POST",
        "/farms/web/ipds/blacklists",
        {"name": "nosuch"},
        "Apply a rule to a farm",
        "nosuch doesn't exist.",
    ),
    (
        "POST",
        "/farms/web/ipds/blacklists",
        {},
        "Apply a rule to a farm",
        "The required parameter name is missing.",
    ),
    (
        "POST",
        "/farms/nofarm/ipds/blacklists",
        {"name": "bad"},
        "Apply a rule to a farm",
        "nofarm doesn't exist.",
    ),
    (
        "POST",
        "/farms/web/ipds/dos",
        {"name": "nosuch"},
        "Apply the DoS rule nosuch to the farm web",
        "nosuch not found.",
    ),
    (
        "DELETE",
        "/ipds/blacklists/bad/sources/99",
        None,
        "Delete source from the list bad",
        "ID 99 doesn't exist in the list bad.",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "description", "message"), BAD)
def test_bad_input_is_refused_and_the_kernel_is_unchanged(
    client: TestClient,
    nft: FakeNftAdapter,
    method: str,
    path: str,
    body: JSON,
    description: str,
    message: str,
) -> None:
    create_farm(client)
    _post(client, "/ipds/blacklists", {"name": "bad"})
    _post(client, "/ipds/blacklists/bad/sources", {"source": "198.18.7.0/24"})
    _post(client, "/ipds/dos", {"name": "persec", "rule": "limitsec"})
    before = _kernel(nft)
    response = client.request(method, url(path), json=body)
    status = 404 if "doesn't exist" in message or message.endswith("not found.") else 400
    expect(response, status, error(description, message))
    assert _kernel(nft) == before


def test_netdev_farms_are_refused(client: TestClient, nft: FakeNftAdapter) -> None:
    create_farm(client)
    _post(client, "/ipds/dos", {"name": "flags", "rule": "bogustcpflags"})
    _post(client, "/ipds/dos", {"name": "early", "rule": "bogustcpflags"})
    _post(client, "/farms/web/ipds/dos", {"name": "early"}, 200)
    assert client.put(url("/farms/web"), json={"nattype": "dsr"}).status_code == 200
    # Kept, shown as not enforced, and gone from the kernel.
    assert get_farm(client)["ipds"]["dos"] == [{"name": "early", "status": "down"}]
    assert not any(name.startswith("inet/i-") for name in nft.state.chains)
    expect(
        client.post(url("/farms/web/ipds/dos"), json={"name": "flags"}),
        400,
        error(
            "Apply the DoS rule flags to the farm web",
            "IPDS rules are not supported on dsr farms: they are forwarded in the ingress hook "
            "without conntrack. Use a nat or dnat farm.",
        ),
    )


def test_bulk_replace_gives_element_deltas(client: TestClient, nft: FakeNftAdapter) -> None:
    _post(client, "/ipds/blacklists", {"name": "big"})
    sources = [f"198.18.{i // 256}.{i % 256}" for i in range(1000)]
    assert client.put(url("/ipds/blacklists/big"), json={"sources": sources}).status_code == 200
    assert len(nft.elements("l-1-4-32")) == 1000
    changed = [*sources[1:], "2001:2::/64"]
    assert client.put(url("/ipds/blacklists/big"), json={"sources": changed}).status_code == 200
    ref = {"family": "inet", "table": "kernlb"}
    assert nft.batches[-1] == [
        {"add": {"set": {**ref, "name": "l-1-6-64", "type": "ipv6_addr"}}},
        {"delete": {"element": {**ref, "name": "l-1-4-32", "elem": ["198.18.0.0"]}}},
        {"add": {"element": {**ref, "name": "l-1-6-64", "elem": ["2001:2::"]}}},
    ]
