"""ZAPI v4.0 against a live kernlb in the LB namespace (issue 17), with requests made as zcli
makes them (`ZAPI-KEY`, every value a JSON string):

- a farmguardian linked through 4.0 takes a failed backend out of rotation and brings it back;
- a virtual interface on `lo` (127/8, host scope) is created, moved, set down and up, deleted,
  through 3.1 and 4.0, in the real kernel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .kernlb import API_KEY, API_PORT, KernlbServer
from .nsexec import NetnsExecutor
from .topology import BACKEND_IPS, CLIENT_IPS, VIP1, Topology, sh
from .traffic import Client

pytestmark = pytest.mark.netns

BASE40 = f"http://127.0.0.1:{API_PORT}/zapi/v4.0/zapi.cgi"
BASE31 = f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi"


class Zcli:
    """zcli's requests, sent from a thread inside the LB namespace."""

    def __init__(self, lb_ns: str) -> None:
        self._exec = NetnsExecutor(lb_ns, workers=1)
        self._http = httpx.Client(headers={"ZAPI-KEY": API_KEY}, timeout=15.0, trust_env=False)

    def close(self) -> None:
        self._exec.shutdown()
        self._http.close()

    def call(
        self, method: str, path: str, body: dict[str, str] | None = None, *, base: str = BASE40
    ) -> tuple[int, dict[str, Any]]:
        def send() -> httpx.Response:
            if method in ("POST", "PUT"):
                return self._http.request(
                    method,
                    base + path,
                    content=json.dumps(body or {}),
                    headers={"Content-Type": "application/json"},
                )
            return self._http.request(method, base + path)

        response = self._exec.run(send)
        answer: dict[str, Any] = response.json()
        return response.status_code, answer

    def ok(self, method: str, path: str, body: dict[str, str] | None = None, **kw: Any) -> Any:
        status, answer = self.call(method, path, body, **kw)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer


@pytest.fixture
def zcli(kernlb: KernlbServer, topo: Topology) -> Iterator[Zcli]:
    client = Zcli(topo.lb)
    try:
        yield client
    finally:
        client.close()


def backend_status(zcli: Zcli, backend_id: int) -> str:
    backends = zcli.ok("GET", "/farms/web")["backends"]
    status: str = next(b["status"] for b in backends if b["id"] == backend_id)
    return status


def wait_status(zcli: Zcli, backend_id: int, status: str, *, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while backend_status(zcli, backend_id) != status:
        assert time.monotonic() < deadline, f"backend {backend_id} not {status} in {timeout}s"
        time.sleep(0.05)
    return time.monotonic()


def test_a_check_linked_through_40_takes_a_failed_backend_out_of_rotation(
    topo: Topology, zcli: Zcli, client: Client
) -> None:
    zcli.ok("GET", "/ids")
    assert zcli.ok("GET", "/system/info")["params"]["edition"] == "community"
    zcli.ok("POST", "/farms", {"farmname": "web", "profile": "l4xnat", "vip": VIP1, "vport": "80"})
    ids = {}
    for name in ("b1", "b2", "b3"):
        added = zcli.ok("POST", "/farms/web/backends", {"ip": BACKEND_IPS[name], "port": "80"})
        ids[name] = added["params"]["id"]
    zcli.ok("POST", "/monitoring/fg", {"name": "fast", "copy_from": "check_tcp"})
    zcli.ok("PUT", "/monitoring/fg/fast", {"interval": "1", "timeout": "1"})
    linked = zcli.ok("POST", "/farms/web/fg", {"name": "fast"})
    assert linked["status"] == "up"
    # The same check, seen through v3.1's fields.
    three = zcli.ok("GET", "/farms/web", base=BASE31)["params"]
    assert (three["fgenabled"], three["fgscript"], three["fgtimecheck"]) == (
        "true",
        "check_tcp -p PORT -H HOST",
        1,
    )

    stopped = time.monotonic()
    topo.stop_backend("b2")
    seen_down = wait_status(zcli, ids["b2"], "down", timeout=5)
    hellos = [client.hello(VIP1, 80, source=CLIENT_IPS[i % 20]) for i in range(60)]
    reached = {h.backend for h in hellos}
    print(f"\nv4.0 farmguardian: b2 stopped -> down after {seen_down - stopped:.2f}s; {reached}")
    assert seen_down - stopped <= 3
    assert reached == {"b1", "b3"}, f"traffic while b2 is down went to {reached}"
    assert zcli.ok("GET", "/farms/web/status")["params"]["status"] == "problem"  # b2 is down

    topo.start_backends(["b2"])
    wait_status(zcli, ids["b2"], "up", timeout=5)
    assert "b2" in {client.hello(VIP1, 80, source=CLIENT_IPS[i % 20]).backend for i in range(60)}

    # Unlinked while a backend is down: it comes back at once (nothing would check it again).
    topo.stop_backend("b3")
    wait_status(zcli, ids["b3"], "down", timeout=5)
    zcli.ok("DELETE", "/farms/web/fg/fast")
    assert backend_status(zcli, ids["b3"]) == "up"
    assert zcli.ok("GET", "/farms/web")["params"]["farmguardian"] is None


def lo_addresses(topo: Topology) -> set[tuple[str, int, str, str]]:
    out = sh(["ip", "-n", topo.lb, "-j", "-4", "addr", "show", "dev", "lo"]).stdout
    return {
        (a["local"], a["prefixlen"], a.get("label", "lo"), a["scope"])
        for link in json.loads(out)
        for a in link.get("addr_info", [])
        if a["local"].startswith("127.") and a["local"] != "127.0.0.1"
    }


def test_a_virtual_interface_on_lo(topo: Topology, zcli: Zcli) -> None:
    created = zcli.ok(
        "POST", "/interfaces/virtual", {"name": "lo:vip", "ip": "127.0.0.5"}, base=BASE31
    )
    assert created["params"]["name"] == "lo:vip"
    assert lo_addresses(topo) == {("127.0.0.5", 8, "lo:vip", "host")}
    assert zcli.ok("GET", "/interfaces/virtual/lo:vip")["interface"]["status"] == "up"

    zcli.ok("PUT", "/interfaces/virtual/lo:vip", {"ip": "127.0.0.6"}, base=BASE31)
    assert lo_addresses(topo) == {("127.0.0.6", 8, "lo:vip", "host")}

    zcli.ok("POST", "/interfaces/virtual/lo:vip/actions", {"action": "down"})
    assert lo_addresses(topo) == set()
    assert zcli.ok("GET", "/interfaces/virtual/lo:vip")["interface"]["status"] == "down"
    zcli.ok("POST", "/interfaces/virtual/lo:vip/actions", {"action": "up"}, base=BASE31)
    assert lo_addresses(topo) == {("127.0.0.6", 8, "lo:vip", "host")}

    zcli.ok("DELETE", "/interfaces/virtual/lo:vip")
    assert lo_addresses(topo) == set()
