"""A client generated from openapi/openapi.json by a real generator (openapi-python-client)
drives a running server (uvicorn) through a farm's life cycle.

The server listens on a Unix socket (no network traffic at all) and has a fake kernel, fake
links and a fake conntrack counter.  The generated models parse every answer; the test also
checks that the parsed values have the JSON types the document promises.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from app.settings import Settings

from .builders import KEY
from .fakes import FakeCounter, fake_app, host_links

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PACKAGE = "kernlb_client"
CONFIG = f"package_name_override: {PACKAGE}\nproject_name_override: kernlb-client\npost_hooks: []\n"
VIRTUAL_IP = "198.18.4.20"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Generate the client package from the checked-in document and import it."""
    work = tmp_path_factory.mktemp("client")
    config = work / "config.yaml"
    config.write_text(CONFIG)
    output = work / PACKAGE
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(SPEC),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    # The generator warns about what it could not turn into code: there must be nothing.
    assert "Warning" not in log and "Unable" not in log, log
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


class UnixServer:
    """uvicorn serving the app on a Unix socket, in a thread of this process."""

    def __init__(self, app: Any, socket: Path) -> None:
        self.socket = socket
        self.server = uvicorn.Server(
            uvicorn.Config(app, uds=str(socket), log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> UnixServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[UnixServer, FakeCounter]]:
    settings = Settings(
        db=f"sqlite:///{tmp_path}/k.db",
        state_dir=tmp_path,
        zapi_key=KEY,
        resync_interval=0,
        load_interval=0,
    )
    links = host_links()
    counter = FakeCounter()
    app = fake_app(settings, addresses=links, counter=counter, links=links)
    with UnixServer(app, tmp_path / "kernlb.sock") as running:
        yield running, counter


def connect(generated: ModuleType, socket: Path, key: str) -> Any:
    """A generated client speaking HTTP over the server's Unix socket (close it after use)."""
    return generated.AuthenticatedClient(
        base_url="http://kernlb",
        token=key,
        prefix="",
        auth_header_name="ZAPI_KEY",
        raise_on_unexpected_status=True,
        httpx_args={"transport": httpx.HTTPTransport(uds=str(socket))},
    )


def api(generated: ModuleType, group: str, operation: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{group}.{operation}")


def model(generated: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def call(
    generated: ModuleType, client: Any, group: str, operation: str, *args: Any, **kw: Any
) -> Any:
    """Call an operation; return the parsed body, asserting the HTTP status on the way."""
    status = kw.pop("status", 200)
    response = api(generated, group, operation).sync_detailed(*args, client=client, **kw)
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == "application/json"
    return response.parsed


def test_farm_life_cycle_through_the_generated_client(
    generated: ModuleType, server: tuple[UnixServer, FakeCounter]
) -> None:
    running, counter = server
    with connect(generated, running.socket, KEY) as client:
        new_key = drive_farm_life_cycle(generated, client, counter)
    with connect(generated, running.socket, new_key) as fresh:
        assert call(generated, fresh, "system", "get_zapi_user").params.key == "********"
        metrics = api(generated, "metrics", "get_metrics").sync_detailed(client=fresh)
        assert metrics.status_code == 200
        assert b"kernlb_api_requests_total" in metrics.content


def drive_farm_life_cycle(g: ModuleType, client: Any, counter: FakeCounter) -> str:
    """Everything from a virtual interface to key rotation; returns the rotated key."""

    version = call(g, client, "system", "get_system_version")
    assert version.params.appliance_version.startswith("ZCE")

    # The VIP lives on a virtual interface, created first (as the Kubernetes controller does).
    body = model(g, "VirtualInterfaceCreate")(name="eth0:vip1", ip=VIRTUAL_IP)
    created_if = call(g, client, "interfaces", "create_virtual_interface", body=body, status=201)
    assert (created_if.params.name, created_if.params.netmask) == ("eth0:vip1", "255.255.255.0")
    shown_if = call(g, client, "interfaces", "get_virtual_interface", "eth0:vip1")
    assert shown_if.interface.status.value == "up"

    farm = call(
        g,
        client,
        "farms",
        "create_farm",
        body=model(g, "FarmCreate")(farmname="web", profile="l4xnat", vip=VIRTUAL_IP, vport=80),
        status=201,
    )
    assert (farm.params.interface, farm.params.vport) == ("eth0:vip1", 80)

    listed = call(g, client, "farms", "list_farms")
    assert [(f.farmname, f.vport) for f in listed.params] == [("web", "80")]  # a string here

    first = call(
        g,
        client,
        "backends",
        "create_backend",
        "web",
        body=model(g, "BackendCreate")(ip="192.0.2.1", port=8080),
        status=201,
    )
    second = call(
        g,
        client,
        "backends",
        "create_backend",
        "web",
        body=model(g, "BackendCreate")(ip="192.0.2.2", port="8081", weight="2"),
        status=201,
    )
    assert (first.params.id, second.params.id, second.params.port) == (0, 1, 8081)
    modified = call(
        g,
        client,
        "backends",
        "modify_backend",
        "web",
        1,
        body=model(g, "BackendUpdate")(weight=3, max_conns="100"),
    )
    assert modified.status.value == "up"

    detail = call(g, client, "farms", "get_farm", "web")
    assert detail.params.vport == 80 and isinstance(detail.params.vport, int)
    assert [(b.id, b.port, b.weight, b.max_conns) for b in detail.backends] == [
        (0, 8080, 1, 0),
        (1, 8081, 3, 100),
    ]
    assert all(isinstance(b.port, int) for b in detail.backends)

    maintenance = call(
        g,
        client,
        "backends",
        "set_backend_maintenance",
        "web",
        1,
        body=model(g, "MaintenanceBody")(action=model(g, "MaintenanceBodyAction")("maintenance")),
    )
    assert maintenance.params.farm.status.value == "maintenance"

    counter.set(1, established=4, pending=1)  # backend 0's mark
    counter.set(2, established=2)  # backend 1, draining: not in the farm's total
    farm_stats = call(g, client, "stats", "list_farm_stats")
    assert [(f.farmname, f.established, f.pending, f.vport) for f in farm_stats.farms] == [
        ("web", 4, 1, "80")
    ]
    backend_stats = call(g, client, "stats", "get_farm_stats", "web")
    assert [(b.id, b.established, b.status.value) for b in backend_stats.backends] == [
        (0, 4, "up"),
        (1, 2, "maintenance"),
    ]

    stopped = call(
        g,
        client,
        "farms",
        "farm_action",
        "web",
        body=model(g, "FarmActionBody")(action=model(g, "FarmActionBodyAction")("stop")),
    )
    assert stopped.params.status.value == "down"
    assert call(g, client, "stats", "list_farm_stats").farms[0].established == 0
    started = call(
        g,
        client,
        "farms",
        "farm_action",
        "web",
        body=model(g, "FarmActionBody")(action=model(g, "FarmActionBodyAction")("start")),
    )
    assert started.params.status.value == "maintenance"

    echo = call(
        g,
        client,
        "farms",
        "modify_farm",
        "web",
        body=model(g, "FarmUpdate")(algorithm=model(g, "FarmUpdateAlgorithmType0")("roundrobin")),
    )
    assert echo.params.additional_properties == {"algorithm": "roundrobin"}

    # A second farm in direct server return: the document offers every nattype the API takes.
    call(
        g,
        client,
        "farms",
        "create_farm",
        body=model(g, "FarmCreate")(farmname="dsr", profile="l4xnat", vip=VIRTUAL_IP, vport=443),
        status=201,
    )
    dsr = model(g, "FarmUpdateNattypeType0")("dsr")
    echo = call(g, client, "farms", "modify_farm", "dsr", body=model(g, "FarmUpdate")(nattype=dsr))
    assert echo.params.additional_properties == {"nattype": "dsr"}
    assert call(g, client, "farms", "get_farm", "dsr").params.nattype == "dsr"
    call(g, client, "farms", "delete_farm", "dsr")

    # An http farm: GET /farms/NAME decodes into its own shape (services, their backends).
    body = model(g, "FarmCreate")(farmname="site", profile="http", vip=VIRTUAL_IP, vport=8080)
    call(g, client, "farms", "create_farm", body=body, status=201)
    body = model(g, "ServiceCreateBody")(id="api")
    call(g, client, "http_farms", "create_service", "site", body=body, status=201)
    body = model(g, "ServiceBackendBody")(ip="192.0.2.5", port=8081)
    call(g, client, "http_farms", "create_service_backend", "site", "api", body=body, status=201)
    site = call(g, client, "farms", "get_farm", "site")
    assert isinstance(site, model(g, "HttpFarmResponse"))
    assert (site.params.listener.value, site.params.vport) == ("http", 8080)
    assert [(s.id, s.fgenabled.value) for s in site.services] == [("api", "false")]
    assert [(b.ip, b.port, b.status) for b in site.services[0].backends] == [
        ("192.0.2.5", 8081, "up")
    ]
    call(g, client, "farms", "delete_farm", "site")

    refused = call(g, client, "interfaces", "delete_virtual_interface", "eth0:vip1", status=400)
    assert "web" in refused.message

    call(g, client, "backends", "delete_backend", "web", 1)
    deleted = call(g, client, "farms", "delete_farm", "web")
    assert deleted.success == "true"
    missing = call(g, client, "farms", "get_farm", "web", status=404)
    assert missing.message == "Farm not found."
    call(g, client, "interfaces", "delete_virtual_interface", "eth0:vip1")
    assert call(g, client, "interfaces", "get_virtual_interface", "eth0:vip1", status=404)

    # Key rotation: a generated key is returned once and replaces the old one.
    rotated = call(
        g,
        client,
        "system",
        "set_zapi_user",
        body=model(g, "ZapiUserUpdate")(randomkey=model(g, "ZapiUserUpdateRandomkey")("true")),
    )
    refused_old = call(g, client, "farms", "list_farms", status=401)
    assert refused_old.message == "Authorization required"
    new_key: str = rotated.params.key
    return new_key


def test_a_farm_through_zapi_40_with_the_generated_client(
    generated: ModuleType, server: tuple[UnixServer, FakeCounter]
) -> None:
    """The same document drives a farm through /zapi/v4.0/zapi.cgi (operation ids `v40...`)."""
    running, _counter = server
    g = generated
    with connect(g, running.socket, KEY) as client:
        info = call(g, client, "v4_0_system", "v_40_get_system_info")
        assert info.params.edition == "community"
        body = model(g, "VirtualCreate40")(name="eth0:vip1", ip=VIRTUAL_IP)
        call(g, client, "v4_0_interfaces", "v_40_create_virtual_interface", body=body, status=201)
        create = model(g, "FarmCreate40")(
            farmname="web",
            profile="l4xnat",  # a const in the document: a Literal, not an enum class
            vip=VIRTUAL_IP,
            vport="80",
        )
        created = call(g, client, "v4_0_farms", "v_40_create_farm", body=create, status=201)
        assert created.message == "The farm web has been created successfully."
        added = call(
            g,
            client,
            "v4_0_backends",
            "v_40_create_backend",
            "web",
            body=model(g, "BackendCreate40")(ip="192.0.2.1", port="8080", weight="2"),
            status=201,
        )
        assert (added.params.id, added.params.port, added.params.weight) == (0, 8080, 2)
        change = model(g, "FarmModify40")(
            algorithm=model(g, "FarmModify40Algorithm")("leastconn"), ttl="30"
        )
        call(g, client, "v4_0_farms", "v_40_modify_farm", "web", body=change)
        link = model(g, "FgAttach40")(name="check_tcp")
        linked = call(g, client, "v4_0_farmguardian", "v_40_attach_farm_guardian", "web", body=link)
        assert linked.status.value == "up"
        farm = call(g, client, "v4_0_farms", "v_40_get_farm", "web")
        assert (farm.params.algorithm, farm.params.ttl, farm.params.farmguardian) == (
            "leastconn",
            30,
            "check_tcp",
        )
        assert [(b.id, b.weight) for b in farm.backends] == [(0, 2)]
        fg = call(g, client, "v4_0_farmguardian", "v_40_get_farm_guardian", "check_tcp")
        assert (fg.params.farms, fg.params.interval) == (["web"], 15)
        maintenance = model(g, "Maintenance40")(
            action=model(g, "Maintenance40Action")("maintenance")
        )
        drained = call(
            g, client, "v4_0_backends", "v_40_set_backend_maintenance", "web", 0, body=maintenance
        )
        assert drained.params.message == "The action maintenance has been performed in farm web."
        stop = model(g, "FarmAction40")(action=model(g, "FarmAction40Action")("stop"))
        stopped = call(g, client, "v4_0_farms", "v_40_farm_action", "web", body=stop)
        assert stopped.params.status.value == "down"
        status = call(g, client, "v4_0_farms", "v_40_get_farm_status", "web")
        assert status.params.status.value == "down"
        ids = call(g, client, "v4_0_system", "v_40_get_ids")
        assert ids.params["farms"]["web"]["services"]["default_service"]["backends"] == {"0": None}
        call(g, client, "v4_0_farms", "v_40_delete_farm", "web")
        assert call(g, client, "v4_0_farms", "v_40_list_farms").params == []
