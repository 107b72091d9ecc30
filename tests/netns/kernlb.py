"""The kernlb server under test: its process in the LB namespace and a ZAPI client for it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from app.net.lab import Process, file_tail, kernlb_serve_argv

from . import zygote
from .nsexec import NetnsExecutor
from .topology import BACKEND_IPS, LabTopology, nft, ns_exec, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
API_PORT = 8444
API_KEY = "testkey"
BASE_URL = f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi"

JSON = dict[str, Any]


class ApiError(AssertionError):
    pass


class Response:
    def __init__(self, method: str, path: str, status: int, body: Any, text: str) -> None:
        self.method, self.path, self.status, self.body, self.text = method, path, status, body, text

    def expect(self, status: int) -> JSON:
        if self.status != status:
            raise ApiError(
                f"{self.method} {self.path}: expected {status}, got {self.status}: {self.text}"
            )
        if not isinstance(self.body, dict):
            raise ApiError(f"{self.method} {self.path}: body is not a JSON object: {self.text}")
        return self.body


class Api:
    """ZAPI v3.1 client; every request is made from a thread inside the LB namespace."""

    def __init__(self, lb_ns: str) -> None:
        self._exec = NetnsExecutor(lb_ns, workers=1)
        self._http = httpx.Client(
            base_url=BASE_URL, headers={"ZAPI_KEY": API_KEY}, timeout=15.0, trust_env=False
        )

    def close(self) -> None:
        self._exec.shutdown()
        self._http.close()

    def request(self, method: str, path: str, body: JSON | None = None) -> Response:
        def call() -> httpx.Response:
            if body is None:
                return self._http.request(method, path)
            return self._http.request(
                method,
                path,
                content=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )

        resp = self._exec.run(call)
        try:
            parsed: Any = resp.json()
        except ValueError:
            parsed = None
        return Response(method, path, resp.status_code, parsed, resp.text)

    def upload(self, path: str, content: bytes, content_type: str) -> Response:
        """A raw (non-JSON) body, e.g. a PEM certificate."""

        def call() -> httpx.Response:
            return self._http.post(path, content=content, headers={"Content-Type": content_type})

        resp = self._exec.run(call)
        return Response("POST", path, resp.status_code, resp.json(), resp.text)

    def is_ready(self) -> bool:
        try:
            return self.request("GET", "/system/version").status == 200
        except httpx.HTTPError:
            return False

    # Farms

    def create_farm(self, name: str, *, vip: str, vport: str) -> JSON:
        body = {"farmname": name, "profile": "l4xnat", "vip": vip, "vport": vport}
        return self.request("POST", "/farms", body).expect(201)

    def edit_farm(self, name: str, **fields: Any) -> JSON:
        return self.request("PUT", f"/farms/{name}", fields).expect(200)

    def get_farm(self, name: str) -> JSON:
        return self.request("GET", f"/farms/{name}").expect(200)

    def farm_action(self, name: str, action: str) -> JSON:
        return self.request("PUT", f"/farms/{name}/actions", {"action": action}).expect(200)

    def delete_farm(self, name: str) -> JSON:
        return self.request("DELETE", f"/farms/{name}").expect(200)

    def setup_farm(
        self,
        name: str,
        *,
        vip: str,
        vport: str,
        backends: dict[str, dict[str, Any]],
        backend_ips: Mapping[str, str] = BACKEND_IPS,
        **farm_fields: Any,
    ) -> dict[str, int]:
        """Create a farm, apply ``farm_fields``, add backends (b1.. -> fields); name -> id.

        ``backend_ips`` maps backend names to addresses (``BACKEND_IPS6`` for IPv6 farms)."""
        self.create_farm(name, vip=vip, vport=vport)
        if farm_fields:
            self.edit_farm(name, **farm_fields)
        return {b: self.add_backend(name, backend_ips[b], **f) for b, f in backends.items()}

    def delete_everything(self) -> None:
        """Delete every farm, virtual interface, IPDS list and DoS rule through ZAPI (what a
        test configured)."""
        for farm in self.request("GET", "/farms").expect(200)["params"]:
            self.delete_farm(farm["farmname"])
        for iface in self.request("GET", "/interfaces/virtual").expect(200)["interfaces"]:
            self.request("DELETE", f"/interfaces/virtual/{iface['name']}").expect(200)
        # Farms are gone, so nothing uses the lists and rules any more.
        for listed in self.request("GET", "/ipds/blacklists").expect(200)["params"]:
            self.request("DELETE", f"/ipds/blacklists/{listed['name']}").expect(200)
        for rule in self.request("GET", "/ipds/dos").expect(200)["params"]:
            self.request("DELETE", f"/ipds/dos/{rule['name']}").expect(200)

    # Backends

    def add_backend(self, farm: str, ip: str, **fields: Any) -> int:
        body = self.request("POST", f"/farms/{farm}/backends", {"ip": ip, **fields}).expect(201)
        backend_id = body["params"]["id"]
        assert isinstance(backend_id, int), body
        return backend_id

    def edit_backend(self, farm: str, backend_id: int, **fields: Any) -> JSON:
        return self.request("PUT", f"/farms/{farm}/backends/{backend_id}", fields).expect(200)

    def delete_backend(self, farm: str, backend_id: int) -> JSON:
        return self.request("DELETE", f"/farms/{farm}/backends/{backend_id}").expect(200)

    def maintenance(self, farm: str, backend_id: int, *, mode: str = "drain") -> JSON:
        body = {"action": "maintenance", "mode": mode}
        path = f"/farms/{farm}/backends/{backend_id}/maintenance"
        return self.request("PUT", path, body).expect(200)

    def backend_up(self, farm: str, backend_id: int) -> JSON:
        path = f"/farms/{farm}/backends/{backend_id}/maintenance"
        return self.request("PUT", path, {"action": "up"}).expect(200)


def start_app(
    netns: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    use_zygote: bool | None = None,
) -> Process:
    """``argv`` (``python -m app ...``) inside ``netns`` from the repository's root, with exactly
    ``env`` as its environment, stdin from /dev/null, stdout and stderr appended to ``log``:
    forked by the worker's zygote, or (``use_zygote=False``, ``KERNLB_TEST_ZYGOTE=0``) the real
    ``ip netns exec NS python -m app ...``."""
    if zygote.enabled() if use_zygote is None else use_zygote:
        assert list(argv[1:3]) == ["-m", "app"], argv
        return zygote.worker_zygote().spawn(netns, argv[3:], env=env, cwd=REPO_ROOT, log=log)
    with log.open("ab") as out:
        return subprocess.Popen(
            ns_exec(netns, *argv),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
        )


class KernlbServer:
    """``python -m app serve`` inside the LB namespace, with its own database and state dir.

    Forked by the worker's zygote (tests/netns/zygote.py: the same CLI, argv and environment,
    without paying for the imports again), or, with ``use_zygote=False`` or
    ``KERNLB_TEST_ZYGOTE=0``, started as the real command line, ``ip netns exec NS python -m app
    serve ...``. Either way ``proc`` is stopped and signalled by PID."""

    def __init__(
        self,
        lb_ns: str,
        workdir: Path,
        *,
        resync_interval: int = 2,
        env: dict[str, str] | None = None,
        use_zygote: bool | None = None,
    ) -> None:
        self.lb_ns = lb_ns
        self.workdir = workdir
        self.log_path = workdir / "kernlb.log"
        self.resync_interval = resync_interval
        self.env = env if env is not None else {}  # KERNLB_* settings over the worker's env
        self.use_zygote = zygote.enabled() if use_zygote is None else use_zygote
        self.proc: Process | None = None
        self.api = Api(lb_ns)
        self.starts = 0
        # Set by a test that wrote rows straight into the database: ZAPI is not how such a
        # server is reset (the shared server is replaced instead).
        self.database_written = False

    def argv(self) -> list[str]:
        """``python -m app serve ...``."""
        return kernlb_serve_argv(
            port=API_PORT,
            db=self.workdir / "kernlb.db",
            state_dir=self.workdir,
            resync_interval=self.resync_interval,
            key=API_KEY,
        )

    def command(self) -> list[str]:
        """The real command line: ``ip netns exec NS [env K=V ...] python -m app serve ...``."""
        settings = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return ns_exec(self.lb_ns, *(["env", *settings] if settings else []), *self.argv())

    def start(self, *, timeout: float = 20.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "kernlb already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== kernlb start #{self.starts} =====\n".encode())
        self.proc = start_app(
            self.lb_ns,
            self.argv(),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            log=self.log_path,
            use_zygote=self.use_zygote,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kernlb exited with rc={self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.api.is_ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"kernlb not ready after {timeout}s:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def note(self, text: str) -> None:
        """A line in the server's log (which test starts), to read the log of a shared server."""
        with self.log_path.open("a") as log:
            log.write(f"\n===== {text} =====\n")

    def kill9(self) -> None:
        """SIGKILL by PID: no chance to clean anything up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def close(self) -> None:
        self.stop()
        self.api.close()

    def log_tail(self, lines: int = 150) -> str:
        return file_tail(self.log_path, lines, missing="(no log)")


def kernlb_listing(lb_ns: str, family: str = "inet") -> list[JSON]:
    """``nft -j list table FAMILY kernlb`` as a list of objects (empty if the table is absent)."""
    out = nft(lb_ns, "-j", "list", "table", family, "kernlb", check=False)
    if not out.strip():
        return []
    items: list[JSON] = json.loads(out)["nftables"]
    return [i for i in items if "metainfo" not in i]


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "counter" in obj and isinstance(obj["counter"], dict):
            return {"counter": None}
        return {k: _strip(v) for k, v in obj.items() if k not in ("handle", "expires")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def normalized_listing(lb_ns: str, family: str = "inet") -> list[str]:
    """The kernlb table, comparable across time: no handles, counters, dynamic contents."""
    result = []
    for item in kernlb_listing(lb_ns, family):
        kind, body = next(iter(item.items()))
        body = dict(body)
        if kind in ("set", "map") and (
            "timeout" in body
            or "dynamic" in body.get("flags", [])
            or "timeout" in body.get("flags", [])
        ):
            body.pop("elem", None)
        elif "elem" in body:
            body["elem"] = sorted(json.dumps(_strip(e), sort_keys=True) for e in body["elem"])
        result.append(json.dumps({kind: _strip(body)}, sort_keys=True))
    return sorted(result)


def kernlb_tables(lb_ns: str) -> dict[str, list[str]]:
    """Both kernlb tables (inet and netdev), normalized."""
    return {family: normalized_listing(lb_ns, family) for family in ("inet", "netdev")}


class SharedServer:
    """One kernlb server for the tests of a module (starting one per test was most of the suite's
    time), brought back to a fresh server's state between tests.

    :meth:`acquire` gives the server to a test: started with an empty database in the topology's
    LB namespace, or the one the previous test left once :meth:`release` has reset it. ``release``
    deletes what the test configured through ZAPI (restarting the server first if the test stopped
    or killed it) and asserts that both kernlb tables are then exactly a fresh server's: a
    leftover is drift, and fails the test that left it. A server that ZAPI cannot reset (the
    test rotated its key) or that a test wrote rows into (``database_written``) is replaced by a
    new one.
    """

    def __init__(self, new_workdir: Callable[[], Path]) -> None:
        self._new_workdir = new_workdir
        self.server: KernlbServer | None = None
        self._lb_ns = ""
        self._generation = -1
        self._fresh_tables: dict[str, list[str]] = {}

    def acquire(self, topology: LabTopology, test: str) -> KernlbServer:
        server = self.server
        if (
            server is None
            or not server.running()
            or (self._lb_ns, self._generation) != (topology.lb, topology.generation)
        ):
            self.discard()
            server = KernlbServer(topology.lb, self._new_workdir())
            self.server = server
            server.start()
            self._lb_ns, self._generation = topology.lb, topology.generation
            self._fresh_tables = kernlb_tables(topology.lb)
        server.note(test)
        return server

    def release(self) -> None:
        server = self.server
        if server is None:
            return
        if server.database_written:
            # Resetting it through ZAPI would restart it and delete each written row one by
            # one (1,001 farms: most of the GUI module's teardown); a new server is clean.
            self.discard()
            return
        try:
            if not server.running():
                server.start()
            server.api.delete_everything()
        except (ApiError, RuntimeError, httpx.HTTPError):
            # The test left the server where ZAPI cannot undo it (a key it rotated, rows it
            # wrote straight into the database): the next test gets a new server.
            self.discard()
            return
        left = kernlb_tables(server.lb_ns)
        if left != self._fresh_tables:
            self.discard()
            raise AssertionError(
                "after deleting every farm and virtual interface through ZAPI, kernlb's tables "
                f"differ from a fresh server's:\nfresh: {self._fresh_tables}\nnow:   {left}"
            )

    def discard(self) -> None:
        """Stop the server (by PID); the next test gets a new one."""
        if self.server is not None:
            self.server.close()
            self.server = None


T = TypeVar("T", bound=LabTopology)


def module_lab_fixture(
    make: Callable[[Path], T], name: str
) -> Callable[[None, pytest.TempPathFactory], Iterator[tuple[T, SharedServer]]]:
    """A module-scoped fixture: a topology (``make(workdir)``) and its kernlb server, built once
    for the tests of a module (building them per test was most of the namespace tests' time),
    removed at its end."""

    @pytest.fixture(scope="module", name=name)
    def fixture(
        netns_capable: None, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[tuple[T, SharedServer]]:
        with make(tmp_path_factory.mktemp(name)) as topology:
            servers = SharedServer(lambda: tmp_path_factory.mktemp("kernlb"))
            try:
                yield topology, servers
            finally:
                servers.discard()

    return fixture


@contextlib.contextmanager
def lend_topology(
    topology: T, servers: SharedServer, request: pytest.FixtureRequest, *, server_fixture: str
) -> Iterator[T]:
    """Give a module's topology to one test, then reset it (rebuilt if the test changed it).

    A test marked ``fresh_topology`` gets new namespaces; a test that does not use the shared
    server (``server_fixture``) runs without it, so it may start a kernlb of its own there."""
    if request.node.get_closest_marker("fresh_topology") is not None:
        servers.discard()
        topology.rebuild()
    elif server_fixture not in request.fixturenames:
        servers.discard()
    yield topology
    if not topology.reset():
        servers.discard()
        topology.rebuild()


@contextlib.contextmanager
def lend_server(
    servers: SharedServer, topology: LabTopology, request: pytest.FixtureRequest
) -> Iterator[KernlbServer]:
    """The module's kernlb server for one test; reset (and checked clean) after it."""
    server = servers.acquire(topology, request.node.nodeid)
    try:
        yield server
    finally:
        if request.node.stash.get(FAILED, False):
            print(f"\n----- kernlb log ({server.log_path}) -----\n{server.log_tail(300)}")
    servers.release()


FAILED = pytest.StashKey[bool]()
"""Set on a test's node when one of its phases failed (see conftest.py)."""
