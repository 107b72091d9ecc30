"""Stats and metrics with real connections (issue 6, reference §8): connections held open to
each backend are counted exactly, from conntrack over netlink, in `/stats/farms*` and in
`/metrics`; down and draining backends and stopped farms report as the reference says.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .kernlb import API_KEY, API_PORT, Api
from .nsexec import NetnsExecutor
from .topology import VIP1, VIP2, Topology
from .traffic import Client, HeldConnection

pytestmark = pytest.mark.netns

K = 4  # connections held to each backend
NO_HOST = "198.18.2.99"  # on the backends' network, but nobody answers ARP for it


@pytest.fixture
def held() -> Iterator[list[HeldConnection]]:
    connections: list[HeldConnection] = []
    try:
        yield connections
    finally:
        for connection in connections:
            connection.close()


def hold(client: Client, held: list[HeldConnection], n: int, **kw: Any) -> Counter[str]:
    """Open n connections to VIP1:80 and keep them; how many landed on each backend."""
    for _ in range(n):
        held.append(client.hold(VIP1, 80, **kw))
    return Counter(c.hello.backend for c in held)


def eventually(read: Callable[[], Any], expected: Any, *, timeout: float = 10.0) -> Any:
    """Poll until `read()` equals `expected` (closing connections pass through FIN states)."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def farm_counts(api: Api) -> dict[str, tuple[int, int, str]]:
    farms = api.request("GET", "/stats/farms").expect(200)["farms"]
    for farm in farms:
        assert isinstance(farm["vport"], str)
        assert isinstance(farm["established"], int) and isinstance(farm["pending"], int)
    return {f["farmname"]: (f["established"], f["pending"], f["status"]) for f in farms}


def backend_counts(api: Api, farm: str, *, suffix: str = "") -> dict[int, tuple[int, int, str]]:
    """GET /stats/farms/NAME (or NAME/backends with suffix="/backends")."""
    body = api.request("GET", f"/stats/farms/{farm}{suffix}").expect(200)
    assert set(body) == {"backends", "description"}
    for backend in body["backends"]:
        assert "service" not in backend
        assert all(isinstance(backend[k], int) for k in ("id", "established", "pending"))
        assert backend["port"] is None or isinstance(backend["port"], int)
    return {b["id"]: (b["established"], b["pending"], b["status"]) for b in body["backends"]}


def scrape(topo: Topology) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics from inside the LB namespace, parsed by prometheus_client's parser."""

    def get() -> str:
        response = httpx.get(
            f"http://127.0.0.1:{API_PORT}/metrics",
            headers={"ZAPI_KEY": API_KEY},
            timeout=15.0,
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        return response.text

    with NetnsExecutor(topo.lb) as executor:
        text = executor.run(get)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_held_connections_are_counted_exactly(
    topo: Topology, api: Api, client: Client, held: list[HeldConnection]
) -> None:
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {"port": 80}, "b2": {"port": 80}, "b3": {}},
        algorithm="roundrobin",
    )
    landed = hold(client, held, 3 * K)
    assert landed == {"b1": K, "b2": K, "b3": K}, landed  # roundrobin: K each
    expected = {ids[name]: (K, 0, "up") for name in ("b1", "b2", "b3")}
    assert eventually(lambda: backend_counts(api, "web"), expected) == expected
    assert backend_counts(api, "web", suffix="/backends") == expected
    assert farm_counts(api) == {"web": (3 * K, 0, "up")}

    samples = scrape(topo)
    for name in ("b1", "b2", "b3"):
        labels = (("backend", str(ids[name])), ("farm", "web"))
        assert samples[("kernlb_backend_established_connections", labels)] == K
        assert samples[("kernlb_backend_up", labels)] == 1.0
    assert samples[("kernlb_farm_established_connections", (("farm", "web"),))] == 3 * K
    assert samples[("kernlb_reconcile_batches_total", ())] >= 1
    assert samples[("kernlb_reconcile_last_success_timestamp_seconds", ())] > 0

    # Closing some: the counts follow.
    for connection in [c for c in held if c.hello.backend == "b2"][: K - 1]:
        connection.close()
    expected[ids["b2"]] = (1, 0, "up")
    assert eventually(lambda: backend_counts(api, "web"), expected) == expected
    assert farm_counts(api) == {"web": (2 * K + 1, 0, "up")}


def test_down_and_draining_backends_keep_out_of_the_farm_total(
    api: Api, client: Client, held: list[HeldConnection]
) -> None:
    # b3 fails its health checks: nothing listens on port 7.
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {"port": 80}, "b2": {"port": 80}, "b3": {"port": 7}},
        algorithm="roundrobin",
    )
    fg = {"fgenabled": "true", "fgscript": "check_tcp -H HOST -p PORT", "fgtimecheck": 1}
    api.request("PUT", "/farms/web/fg", fg).expect(200)
    status = eventually(lambda: backend_counts(api, "web")[ids["b3"]][2], "down", timeout=15)
    assert status == "down"

    landed = hold(client, held, 2 * K)
    assert landed == {"b1": K, "b2": K}, landed
    api.maintenance("web", ids["b2"], mode="drain")  # keeps its connections

    expected = {
        ids["b1"]: (K, 0, "up"),
        ids["b2"]: (K, 0, "maintenance"),
        ids["b3"]: (0, 0, "down"),
    }
    assert eventually(lambda: backend_counts(api, "web"), expected) == expected
    # Reference §8.1: a farm counts only its backends that are up.
    assert farm_counts(api) == {"web": (K, 0, "problem")}


def test_a_stopped_farm_reports_nothing(
    api: Api, client: Client, held: list[HeldConnection]
) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}})
    hold(client, held, K)
    assert eventually(lambda: farm_counts(api), {"web": (K, 0, "up")}) == {"web": (K, 0, "up")}
    api.farm_action("web", "stop")
    assert farm_counts(api) == {"web": (0, 0, "down")}
    assert backend_counts(api, "web") == {ids["b1"]: (0, 0, "up")}


def test_unanswered_connection_attempts_are_pending(api: Api, client: Client) -> None:
    api.create_farm("void", vip=VIP2, vport="80")
    backend_id = api.add_backend("void", NO_HOST, port=80)
    for _ in range(K):
        outcome = client.attempt(VIP2, 80, timeout=0.3)
        assert outcome.error is not None  # nobody answers
    expected = {backend_id: (0, K, "up")}
    assert eventually(lambda: backend_counts(api, "void"), expected) == expected
    assert farm_counts(api) == {"void": (0, K, "up")}


def test_stats_of_a_missing_farm(api: Api) -> None:
    response = api.request("GET", "/stats/farms/nope")
    assert response.status == 400
    assert response.body == {
        "description": "Get farm stats",
        "error": "true",
        "message": "The farmname nope does not exist.",
    }
