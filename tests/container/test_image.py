"""The container image, built and run for real (issue 7).

Podman builds docker/Dockerfile; the container runs in the load balancer's namespace of the
traffic-test topology (``--network ns:/run/netns/LB --cap-add NET_ADMIN``), as Docker would run it
with ``--network host`` on a load balancer. Proven here: it serves the API over HTTPS on :444 as
an unprivileged user, programs a farm that balances real connections between the backend
namespaces, and keeps its state (farms, key, certificate) in the volume across a new container.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..netns.nsexec import NetnsExecutor
from ..netns.topology import BACKEND_IPS, LB_CLIENT_SIDE_IP, VIP1, Topology, nft
from ..netns.traffic import Client
from .conftest import BuiltImage
from .podman import OWNER_LABEL, Podman

pytestmark = [pytest.mark.container, pytest.mark.netns, pytest.mark.slow]

ZAPI_PORT = 444


class Container:
    """One ``podman run`` of the image in a network namespace."""

    def __init__(self, podman: Podman, image: str) -> None:
        self.podman = podman
        self.image = image
        self.name = f"kernlb-test-{uuid.uuid4().hex[:8]}"

    def start(
        self, *, netns: str, volume: str, env_file: Path | None, compose_caps: bool = False
    ) -> None:
        """``--cap-add NET_ADMIN`` (the issue's recipe) or docker/compose.yaml's capabilities."""
        caps = ["--cap-add", "NET_ADMIN"]
        if compose_caps:
            caps = ["--cap-drop", "ALL"]
            caps += [f"--cap-add={cap}" for cap in ("NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW")]
        args = [
            "run",
            "--detach",
            "--name",
            self.name,
            "--label",
            f"{OWNER_LABEL}={os.getpid()}",
            "--runtime",
            "runc",
            "--network",
            f"ns:/run/netns/{netns}",
            *caps,
            "--read-only",
            # No systemd here to run the health timer; the test runs the check itself.
            "--health-interval",
            "disable",
            "--volume",
            f"{volume}:/var/lib/kernlb",
        ]
        if env_file is not None:
            args += ["--env-file", str(env_file)]
        self.podman.run(*args, self.image)

    def running(self) -> bool:
        proc = self.podman.run("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return proc.stdout.strip() == "true"

    def logs(self) -> str:
        proc = self.podman.run("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-6000:]

    def remove(self) -> None:
        self.podman.run("rm", "--force", "--time", "10", self.name, check=False, timeout=60)


class Zapi:
    """ZAPI over HTTPS, from a thread in the client namespace (the operator's side)."""

    def __init__(self, netns: str, *, host: str, key: str) -> None:
        self.host = host
        self._exec = NetnsExecutor(netns, workers=1)
        self._http = httpx.Client(
            base_url=f"https://{host}:{ZAPI_PORT}/zapi/v3.1/zapi.cgi",
            headers={"ZAPI_KEY": key},
            verify=False,  # kernlb's self-signed certificate
            timeout=10.0,
            trust_env=False,
        )

    def close(self) -> None:
        self._exec.shutdown()
        self._http.close()

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> tuple[int, Any]:
        def call() -> httpx.Response:
            content = None if body is None else json.dumps(body)
            hdrs = {**headers, **({"Content-Type": "application/json"} if content else {})}
            return self._http.request(method, path, content=content, headers=hdrs)

        resp = self._exec.run(call)
        return resp.status_code, resp.json()

    def expect(
        self, status: int, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        got, parsed = self.request(method, path, body)
        assert got == status, f"{method} {path}: expected {status}, got {got}: {parsed}"
        return parsed

    def wait_ready(self, container: Container, *, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not container.running():
                pytest.fail(f"container {container.name} exited:\n{container.logs()}")
            try:
                if self.request("GET", "/system/version")[0] == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"kernlb not serving after {timeout}s:\n{container.logs()}")

    def certificate(self) -> str:
        return self._exec.run(ssl.get_server_certificate, (self.host, ZAPI_PORT))


@pytest.fixture
def topo(tmp_path: Path, podman: Podman) -> Iterator[Topology]:
    with Topology(workdir=tmp_path) as topology:
        yield topology


@pytest.fixture
def containers(podman: Podman, kernlb_image: BuiltImage) -> Iterator[list[Container]]:
    made: list[Container] = []
    try:
        yield made
    finally:
        for container in made:
            container.remove()


def _spread(client: Client, n: int) -> dict[str, int]:
    counts = client.backends_of(VIP1, 80, n, concurrency=6)
    return dict(sorted(counts.items()))


def test_container_serves_balances_and_keeps_state(
    podman: Podman,
    kernlb_image: BuiltImage,
    topo: Topology,
    volume: str,
    env_file: Path,
    containers: list[Container],
) -> None:
    key = env_file.read_text().strip().partition("=")[2]
    assert topo.client_exec is not None
    client = Client(topo.client_exec)
    foreign_before = topo.foreign_tables()
    zapi = Zapi(topo.client, host=LB_CLIENT_SIDE_IP, key=key)
    try:
        started = time.monotonic()
        first = Container(podman, kernlb_image.name)
        containers.append(first)
        first.start(netns=topo.lb, volume=volume, env_file=env_file)
        zapi.wait_ready(first)
        print(f"container serving after {time.monotonic() - started:.1f} s")

        # Unprivileged, with exactly the capabilities it needs.
        top = podman.run("top", first.name, "user", "capeff", "args").stdout
        serve = [line for line in top.splitlines() if "kernlb serve" in line]
        assert serve and serve[0].split()[0] == "kernlb", top
        assert "NET_ADMIN" in serve[0] and "NET_BIND_SERVICE" in serve[0], top
        assert "SYS_ADMIN" not in top and "DAC_OVERRIDE" not in serve[0], top
        assert podman.run("healthcheck", "run", first.name, check=False).returncode == 0
        assert zapi.request("GET", "/farms", ZAPI_KEY="wrong")[0] == 401
        certificate = zapi.certificate()

        # A farm through the API, balancing real connections between the backend namespaces.
        zapi.expect(
            201,
            "POST",
            "/farms",
            {"farmname": "web", "profile": "l4xnat", "vip": VIP1, "vport": "80"},
        )
        for name in ("b1", "b2", "b3"):
            zapi.expect(201, "POST", "/farms/web/backends", {"ip": BACKEND_IPS[name]})
        spread = _spread(client, 150)
        print(f"150 connections through the container's farm: {spread}")
        # Binomial(150, 1/3): sd 5.8; 20..80 is beyond 5 sd.
        assert set(spread) == {"b1", "b2", "b3"}, spread
        assert all(20 <= n <= 80 for n in spread.values()), spread
        assert "chain" in nft(topo.lb, "list", "table", "inet", "kernlb")

        # A new container on the same volume, without the key in its environment and with
        # compose.yaml's capabilities (all dropped but three): the farm, the key (stored hashed)
        # and the certificate come from the volume, and the rules the old container left are
        # not what serves traffic: they are gone before it starts.
        first.remove()
        nft(topo.lb, "delete", "table", "inet", "kernlb")
        assert client.refused(VIP1, 80), "traffic still captured without the kernlb table"
        restarted = time.monotonic()
        second = Container(podman, kernlb_image.name)
        containers.append(second)
        second.start(netns=topo.lb, volume=volume, env_file=None, compose_caps=True)
        zapi.wait_ready(second)
        print(f"new container serving after {time.monotonic() - restarted:.1f} s")
        farm = zapi.expect(200, "GET", "/farms/web")
        assert farm["params"]["status"] == "up", farm
        assert sorted(b["ip"] for b in farm["backends"]) == sorted(BACKEND_IPS.values()), farm
        assert zapi.certificate() == certificate
        spread = _spread(client, 150)
        print(f"150 connections after the restart: {spread}")
        assert set(spread) == {"b1", "b2", "b3"}, spread

        # And it still manages the farm: maintenance takes b2 out of rotation.
        b2 = next(b["id"] for b in farm["backends"] if b["ip"] == BACKEND_IPS["b2"])
        zapi.expect(
            200,
            "PUT",
            f"/farms/web/backends/{b2}/maintenance",
            {"action": "maintenance", "mode": "drain"},
        )
        spread = _spread(client, 60)
        assert set(spread) == {"b1", "b3"}, spread
    finally:
        zapi.close()
    assert topo.foreign_tables() == foreign_before, "kernlb modified a foreign nftables table"


def test_container_without_net_admin_says_what_it_needs(
    podman: Podman, kernlb_image: BuiltImage
) -> None:
    proc = podman.run(
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        "--label",
        f"{OWNER_LABEL}={os.getpid()}",
        kernlb_image.name,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1, proc
    assert "--cap-add NET_ADMIN" in proc.stderr, proc.stderr
