"""dataplane.md §4.16-17: overlapping farms, wildcard farms, stop / start / delete."""

from __future__ import annotations

import json

import pytest

from .kernlb import Api, kernlb_listing, normalized_listing
from .topology import VIP1, VIP2, VIP3, Topology
from .traffic import Client

pytestmark = pytest.mark.netns


def _refused_with_farm_named(api: Api, method: str, path: str, body: dict[str, str]) -> None:
    resp = api.request(method, path, body)
    assert resp.status == 400, (
        f"{method} {path} {body}: expected 400, got {resp.status} {resp.text}"
    )
    assert isinstance(resp.body, dict), resp.text
    assert resp.body.get("error") == "true", resp.body
    assert "alpha" in str(resp.body.get("message")), f"message does not name alpha: {resp.body}"


def test_overlap_is_refused_and_existing_farm_keeps_working(api: Api, client: Client) -> None:
    api.setup_farm("alpha", vip=VIP1, vport="80", backends={"b1": {}})

    for name, vport in (("bravo", "80"), ("charlie", "70:90"), ("delta", "443,80")):
        body = {"farmname": name, "profile": "l4xnat", "vip": VIP1, "vport": vport}
        _refused_with_farm_named(api, "POST", "/farms", body)
        assert api.request("GET", f"/farms/{name}").status == 404, f"refused {name} exists"

    api.create_farm("echo", vip=VIP1, vport="443")
    _refused_with_farm_named(api, "PUT", "/farms/echo", {"vport": "80,443"})
    assert str(api.get_farm("echo")["params"]["vport"]) == "443", "refused PUT changed echo"

    counts = client.backends_of(VIP1, 80, 60)
    assert counts == {"b1": 60}, counts


@pytest.mark.parametrize("wildcard_first", [True, False], ids=["wildcard-first", "specific-first"])
def test_wildcard_farm_never_captures_the_specific_port(
    api: Api, client: Client, wildcard_first: bool
) -> None:
    def wildcard() -> None:
        api.setup_farm("wild", vip=VIP2, vport="*", backends={"b3": {}})

    def specific() -> None:
        api.setup_farm("spec", vip=VIP2, vport="80", backends={"b1": {}, "b2": {}})

    for create in (wildcard, specific) if wildcard_first else (specific, wildcard):
        create()

    counts = client.backends_of(VIP2, 80, 100)
    print(f"VIP:80 ({'wildcard first' if wildcard_first else 'specific first'}): {dict(counts)}")
    assert counts["b3"] == 0, f"the wildcard farm captured the specific farm's port: {counts}"
    assert client.backends_of(VIP2, 5000, 40) == {"b3": 40}
    assert client.backends_of(VIP2, 443, 40) == {"b3": 40}
    hello, _ = client.udp(VIP2, 80)  # the specific farm is TCP only
    assert hello.backend == "b3"


def test_tcp_wildcard_farm_never_captures_the_specific_port(api: Api, client: Client) -> None:
    api.setup_farm("spec", vip=VIP3, vport="80", backends={"b1": {}})
    api.setup_farm("wild", vip=VIP3, vport="*", backends={"b3": {}}, protocol="tcp")

    assert client.backends_of(VIP3, 80, 100) == {"b1": 100}
    assert client.backends_of(VIP3, 12345, 40) == {"b3": 40}
    assert client.udp_probe(VIP3, 5000) == "refused", "a TCP wildcard farm captured UDP"


def test_stop_start_delete(topo: Topology, api: Api, client: Client) -> None:
    api.setup_farm("other", vip=VIP2, vport="80", backends={"b2": {}})
    baseline = normalized_listing(topo.lb)
    assert baseline, "kernlb table missing"

    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b3": {"port": 8080}})
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b3"}

    stopped = api.farm_action("web", "stop")
    print(f"stop: {stopped}")
    assert api.get_farm("web")["params"]["status"] == "down"
    assert client.refused(VIP1, 80), "a stopped farm still captures its VIP:port"
    assert client.backends_of(VIP2, 80, 60) == {"b2": 60}, "stopping web disturbed other"

    api.farm_action("web", "start")
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b3"}
    api.farm_action("web", "restart")
    assert set(client.backends_of(VIP1, 80, 40)) == {"b1", "b3"}
    assert client.backends_of(VIP2, 80, 20) == {"b2": 20}

    api.delete_farm("web")
    assert api.request("GET", "/farms/web").status == 404
    assert client.refused(VIP1, 80), "a deleted farm still captures its VIP:port"
    assert client.backends_of(VIP2, 80, 60) == {"b2": 60}, "deleting web disturbed other"

    raw = json.dumps(kernlb_listing(topo.lb))
    assert VIP1 not in raw, "the deleted farm's VIP is still referenced in table inet kernlb"
    after = normalized_listing(topo.lb)
    left = sorted(set(after) - set(baseline))
    gone = sorted(set(baseline) - set(after))
    assert not left and not gone, (
        "after delete the kernlb table differs from before the farm existed:\n"
        + "\n".join(f"+ {x}" for x in left)
        + "\n"
        + "\n".join(f"- {x}" for x in gone)
    )
