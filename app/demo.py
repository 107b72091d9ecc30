"""`kernlb demo`: a throw-away load-balancer lab in network namespaces.

    client ns               LB ns: kernlb                        backend ns
    198.18.1.2 --veth-- 198.18.1.1                     +-- web1 198.18.2.11 (weight 2)
                        VIP 198.18.0.10 on lo          +-- web2 198.18.2.12 (weight 1)
                        br0 198.18.2.1 ----------------+-- web3 198.18.2.13 (weight 1)

Each backend serves its own name over HTTP on port 80. kernlb runs inside the LB namespace (plain
HTTP on 127.0.0.1 there, a database in a temporary directory); the demo creates a farm through
ZAPI, sends bounded traffic from the client namespace and prints where the connections went, then
shows a maintenance and a backend failure. Only 198.18.0.0/15 addresses are used, every interface
is created inside its namespace, and nothing is added to the root namespace.

On exit, also on Ctrl-C, SIGTERM or SIGHUP, the processes are stopped by PID and the namespaces and
the directory are deleted. The children also die with the demo (parent-death signal), and a lab
left by a demo that was killed outright is removed by the next one.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from app.net.lab import Lab as NetnsLab
from app.net.lab import (
    LabCommandError,
    NetnsExecutor,
    file_tail,
    ip_batch,
    kernlb_serve_argv,
    netns_names,
    remove_stale_namespaces,
    run,
    sysctl,
    veth,
)

PREFIX = "kdemo"
CLIENT_IP = "198.18.1.2"
LB_CLIENT_IP = "198.18.1.1"
LB_BACKEND_IP = "198.18.2.1"
VIP = "198.18.0.10"
VPORT = 80
API_PORT = 8444
FARM = "web"
MAX_CONNECTIONS = 5000
CLIENT_THREADS = 4
CONNECT_TIMEOUT = 2.0
HEALTH_WAIT = 15.0  # seconds to wait for farmguardian to notice a failure or a recovery
BAR_WIDTH = 40


@dataclass(frozen=True)
class BackendSpec:
    name: str
    ip: str
    weight: int


BACKENDS = (
    BackendSpec("web1", "198.18.2.11", 2),
    BackendSpec("web2", "198.18.2.12", 1),
    BackendSpec("web3", "198.18.2.13", 1),
)


class DemoError(RuntimeError):
    """The demo cannot go on (the message says why); the lab is removed all the same."""


# --- the lab ----------------------------------------------------------------------------------


def remove_stale_labs() -> list[str]:
    """Delete the namespaces of demos whose process is gone (killed before it could clean up)."""
    return remove_stale_namespaces(rf"{PREFIX}(\d+)-\w+")


def _python_env() -> dict[str, str]:
    """The environment of child interpreters: they import this `app`, installed or not, and see
    no KERNLB_* setting of the caller (a KERNLB_DB there must never reach the lab's kernlb)."""
    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNLB_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{root}{os.pathsep}{path}" if path else root
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Lab:
    """The demo's namespaces (named by role), links and processes (named by key)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix = f"{PREFIX}{os.getpid()}"
        # Children die with the demo; Ctrl-C in the terminal reaches only the demo.
        self.lab = NetnsLab(workdir=workdir, die_with_parent=True, new_session=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def namespaces(self) -> list[str]:
        return self.lab.namespaces

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def build(self) -> None:
        try:
            self._build()
        except LabCommandError as exc:
            raise DemoError(str(exc)) from exc

    def _build(self) -> None:
        client, lb = self.ns("client"), self.ns("lb")
        for name in (client, lb, *(self.ns(spec.name) for spec in BACKENDS)):
            self.lab.add_netns(name, rp_filter=False)
        lb_cmds = [
            *veth("eth-client", "eth0", client),
            f"addr add {LB_CLIENT_IP}/24 dev eth-client",
            f"addr add {VIP}/32 dev lo",
            "link add br0 type bridge",
            f"addr add {LB_BACKEND_IP}/24 dev br0",
            "link set br0 up",
        ]
        for spec in BACKENDS:
            lb_cmds += veth(f"eth-{spec.name}", "eth0", self.ns(spec.name), master="br0")
        ip_batch(lb, lb_cmds)
        sysctl(lb, "net.ipv4.ip_forward=1")
        ip_batch(
            client,
            [
                f"addr add {CLIENT_IP}/24 dev eth0",
                "link set eth0 up",
                f"route add {VIP}/32 via {LB_CLIENT_IP}",
            ],
        )
        for spec in BACKENDS:
            ip_batch(
                self.ns(spec.name),
                [
                    f"addr add {spec.ip}/24 dev eth0",
                    "link set eth0 up",
                    f"route add default via {LB_BACKEND_IP}",
                ],
            )

    def pool(self, role: str, *, workers: int) -> NetnsExecutor:
        return self.lab.executor(self.ns(role), workers=workers)

    def spawn(self, key: str, role: str, argv: Sequence[str], *, env: dict[str, str]) -> int:
        """Start `argv` in a namespace; its output goes to `key`.log in the work directory."""
        self.procs[key] = self.lab.spawn(
            self.ns(role), argv, log=self.workdir / f"{key}.log", env=env
        )
        return self.procs[key].pid

    def stop(self, key: str) -> None:
        proc = self.procs.pop(key, None)
        if proc is not None:
            self.lab.stop(proc)

    def running(self, key: str) -> bool:
        proc = self.procs.get(key)
        return proc is not None and proc.poll() is None

    def log_tail(self, key: str, lines: int = 30) -> str:
        return file_tail(self.workdir / f"{key}.log", lines)

    def close(self) -> None:
        self.procs.clear()
        self.lab.close()
        # Also any namespace of ours that an interrupt kept out of the list.
        for name in netns_names():
            if name.startswith(f"{self.prefix}-"):
                run(["ip", "netns", "del", name], check=False)


# --- the backends' web server (`python -m app.demo --backend NAME`) ----------------------------


def serve_backend(name: str, port: int) -> None:
    """Answer every GET with the backend's name, until SIGTERM."""
    body = f"{name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = f"kernlb-demo-{name}"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


# --- traffic -----------------------------------------------------------------------------------


def fetch(host: str, port: int) -> str:
    """One new connection and one GET: the backend's name, or `failed` (refused, timeout...)."""
    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        name = conn.getresponse().read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return "failed"
    finally:
        conn.close()
    return name or "failed"


def wait_listening(host: str, port: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- ZAPI ----------------------------------------------------------------------------------------


class Zapi:
    """ZAPI v3.1 client from a thread inside the LB namespace."""

    def __init__(self, threads: NetnsExecutor, key: str) -> None:
        import httpx  # only the demo's parent needs it

        self._threads = threads
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi",
            headers={"ZAPI_KEY": key},
            timeout=15.0,
            trust_env=False,
        )
        self._errors: tuple[type[Exception], ...] = (httpx.HTTPError,)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """(status, parsed JSON body or None)."""

        def call() -> tuple[int, Any]:
            content = None if body is None else json.dumps(body)
            headers = {"Content-Type": "application/json"} if content else {}
            resp = self._http.request(method, path, content=content, headers=headers)
            try:
                return resp.status_code, resp.json()
            except ValueError:
                return resp.status_code, None

        return self._threads.run(call)

    def ready(self) -> bool:
        try:
            status, _ = self.request("GET", "/system/version")
        except self._errors:
            return False
        return bool(status == 200)


def wait_ready(
    zapi: Zapi, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 60.0
) -> None:
    """Until kernlb (``proc``, logging to ``log``) answers ZAPI; DemoError if it exits or stays
    silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not zapi.ready():
        if proc.poll() is not None:
            raise DemoError(f"kernlb exited:\n{file_tail(log)}")
        if time.monotonic() > deadline:
            raise DemoError(f"kernlb does not answer after {timeout:.0f} s:\n{file_tail(log)}")
        time.sleep(0.2)


# --- the demo ------------------------------------------------------------------------------------


def format_distribution(counts: Counter[str], total: int) -> list[str]:
    """One line per backend (and failures): count, share, bar."""
    lines = []
    for name in [spec.name for spec in BACKENDS] + ["failed"]:
        count = counts.get(name, 0)
        if name == "failed" and count == 0:
            continue
        share = 100.0 * count / total if total else 0.0
        bar = "#" * round(BAR_WIDTH * count / total) if total else ""
        lines.append(f"    {name:<6} {count:>5} {share:>4.0f}%  {bar}".rstrip())
    return lines


class Demo:
    def __init__(
        self, lab: Lab, *, out: TextIO, connections: int, pause: bool, health_checks: bool
    ) -> None:
        self.lab = lab
        self.out = out
        self.connections = connections
        self.pause = pause
        self.want_health_checks = health_checks
        self.key = secrets.token_hex(16)
        self.zapi: Zapi | None = None
        self.client: NetnsExecutor | None = None
        self.lb: NetnsExecutor | None = None
        self.health_checks = False
        self.ids: dict[str, int] = {}

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, number: int, title: str) -> None:
        if self.pause and number > 1:
            with contextlib.suppress(EOFError):
                input("\n  -- press Enter for the next step (Ctrl-C ends the demo) -- ")
        self.say(f"\n[{number}/6] {title}")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.zapi is not None
        status, parsed = self.zapi.request(method, path, body)
        shown = f" {json.dumps(body)}" if body is not None else ""
        self.say(f"  {method} {path}{shown} -> {status}")
        return status, parsed

    def must(self, expected: int, method: str, path: str, body: dict[str, Any] | None) -> Any:
        status, parsed = self.api(method, path, body)
        if status != expected:
            raise DemoError(f"{method} {path} answered {status}: {parsed}")
        return parsed

    def run(self) -> None:
        lab = self.lab
        self.say("kernlb demo: a load balancer lab in network namespaces, removed when it ends.")
        self.say()
        self.say(f"  client {CLIENT_IP} --> VIP {VIP}:{VPORT} (kernlb in the LB namespace)")
        for spec in BACKENDS:
            self.say(f"      --> {spec.name} {spec.ip}:{VPORT}  weight {spec.weight}")

        self.step(1, "Building the lab")
        started = time.monotonic()
        lab.build()
        for spec in BACKENDS:
            self.start_backend(spec)
        lb = self.lb = lab.pool("lb", workers=1)
        for spec in BACKENDS:
            self.wait_backend(spec)
        self.client = lab.pool("client", workers=CLIENT_THREADS)
        self.say(f"  namespaces: {', '.join(lab.namespaces)}")
        self.say(f"  ready in {time.monotonic() - started:.1f} s")

        self.step(2, "Starting kernlb inside the LB namespace")
        self.start_kernlb(lb)

        self.step(3, f"Creating farm {FARM!r} through ZAPI v3.1, then sending traffic")
        self.create_farm()
        self.say("  weights 2:1:1: about 50% / 25% / 25% of the connections")
        self.traffic(f"{self.connections} connections from the client to {VIP}:{VPORT}:")

        self.step(4, "Maintenance: web1 is drained (new connections avoid it)")
        web1 = f"/farms/{FARM}/backends/{self.ids['web1']}/maintenance"
        self.must(200, "PUT", web1, {"action": "maintenance", "mode": "drain"})
        self.traffic(f"{self.connections} connections while web1 is in maintenance:")
        self.must(200, "PUT", web1, {"action": "up"})
        self.traffic(f"{self.connections} connections after web1 is back:")

        self.step(5, "Backend failure: web2's web server is stopped")
        self.backend_failure()

        self.step(6, "Removing the lab")

    def start_backend(self, spec: BackendSpec) -> None:
        argv = [sys.executable, "-m", "app.demo", "--backend", spec.name, "--port", str(VPORT)]
        self.lab.spawn(spec.name, spec.name, argv, env=_python_env())

    def wait_backend(self, spec: BackendSpec) -> None:
        """Wait until the backend's server accepts connections (seen from the LB)."""
        assert self.lb is not None
        if not self.lb.run(functools.partial(wait_listening, spec.ip, VPORT, timeout=15.0)):
            raise DemoError(f"{spec.name} does not answer:\n{self.lab.log_tail(spec.name)}")

    def start_kernlb(self, lb: NetnsExecutor) -> None:
        lab = self.lab
        argv = kernlb_serve_argv(
            port=API_PORT,
            db=lab.workdir / "kernlb.db",
            state_dir=lab.workdir,
            resync_interval=5,
        )
        env = {**_python_env(), "KERNLB_ZAPI_KEY": self.key}
        self.say(f"  kernlb serve --no-tls --host 127.0.0.1 --port {API_PORT}")
        self.say(f"  (in namespace {lab.ns('lb')}; database and log in {lab.workdir})")
        started = time.monotonic()
        pid = lab.spawn("kernlb", "lb", argv, env=env)
        self.zapi = Zapi(lb, self.key)
        wait_ready(self.zapi, lab.procs["kernlb"], lab.workdir / "kernlb.log")
        self.say(f"  kernlb (pid {pid}) answers after {time.monotonic() - started:.1f} s")

    def create_farm(self) -> None:
        farm = {"farmname": FARM, "profile": "l4xnat", "vip": VIP, "vport": str(VPORT)}
        self.must(201, "POST", "/farms", farm)
        for spec in BACKENDS:
            body = {"ip": spec.ip, "port": VPORT, "weight": spec.weight}
            created = self.must(201, "POST", f"/farms/{FARM}/backends", body)
            self.ids[spec.name] = int(created["params"]["id"])
        if not self.want_health_checks:
            self.say("  (no health checks: --no-health-checks)")
            return
        # Health checks (farmguardian): a TCP connect to each backend every second.
        fg = {"fgenabled": "true", "fgtimecheck": 1, "fgscript": "check_tcp -H HOST -p PORT"}
        status, _ = self.api("PUT", f"/farms/{FARM}/fg", fg)
        self.health_checks = status == 200
        if not self.health_checks:
            self.say("  (health checks are not available in this kernlb)")

    def distribution(self) -> Counter[str]:
        """Send the connections from the client namespace; count them per backend."""
        assert self.client is not None
        n, threads = self.connections, CLIENT_THREADS

        def share(k: int) -> Callable[[], list[str]]:
            return lambda: [fetch(VIP, VPORT) for _ in range(k, n, threads)]

        parts = self.client.map_all(
            [share(k) for k in range(threads)], timeout=30 + n * CONNECT_TIMEOUT / threads
        )
        return Counter(name for part in parts for name in part)

    def traffic(self, title: str) -> Counter[str]:
        counts = self.distribution()
        self.say(f"  {title}")
        for line in format_distribution(counts, self.connections):
            self.say(line)
        return counts

    def backend_status(self, name: str) -> str:
        assert self.zapi is not None
        status, farm = self.zapi.request("GET", f"/farms/{FARM}")
        if status != 200:
            return "unknown"
        for backend in farm.get("backends", []):
            if backend.get("id") == self.ids[name]:
                return str(backend.get("status"))
        return "unknown"

    def wait_status(self, name: str, wanted: str) -> float | None:
        """Seconds until `name` shows `wanted` in GET /farms/NAME, or None (bounded)."""
        started = time.monotonic()
        while time.monotonic() - started < HEALTH_WAIT:
            if self.backend_status(name) == wanted:
                return time.monotonic() - started
            time.sleep(0.2)
        return None

    def backend_failure(self) -> None:
        pid = self.lab.procs["web2"].pid
        self.lab.stop("web2")
        self.say(
            f"  web2's server (pid {pid}) stopped: nothing listens on {BACKENDS[1].ip}:{VPORT}"
        )
        maintenance = f"/farms/{FARM}/backends/{self.ids['web2']}/maintenance"
        detected = self.wait_status("web2", "down") if self.health_checks else None
        if detected is not None:
            self.say(f"  the health check marked web2 down after {detected:.1f} s")
            self.traffic(f"{self.connections} connections while web2 is down:")
        else:
            if self.health_checks:
                self.say(f"  the health check did not mark web2 down within {HEALTH_WAIT:.0f} s")
            self.traffic(f"{self.connections} connections with web2 still in rotation:")
            self.say("  the connections sent to web2 fail; an operator takes it out:")
            self.must(200, "PUT", maintenance, {"action": "maintenance", "mode": "cut"})
            self.traffic(f"{self.connections} connections with web2 in maintenance:")
        self.say("  web2's server starts again")
        self.start_backend(BACKENDS[1])
        self.wait_backend(BACKENDS[1])
        if detected is not None:
            back = self.wait_status("web2", "up")
            if back is not None:
                self.say(f"  the health check marked web2 up after {back:.1f} s")
            else:
                self.say(f"  the health check did not mark web2 up within {HEALTH_WAIT:.0f} s")
        else:
            self.must(200, "PUT", maintenance, {"action": "up"})
        self.traffic(f"{self.connections} connections with web2 back:")


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does: through the clean-up. SIGINT too, even
    when the demo was started with it ignored (as `nohup` and background jobs of a script do)."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root: it creates network namespaces (run it with sudo)"
    for tool in ("ip", "sysctl"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (apt-get install iproute2 procps)"
    return None


def run_demo(
    *,
    connections: int = 120,
    pause: bool = True,
    health_checks: bool = True,
    out: TextIO | None = None,
) -> int:
    """The whole demo; 0 when it ran to the end, 130 when interrupted, 1 on failure."""
    stream = out if out is not None else sys.stdout
    if not prepare(stream):
        return 2
    if not 1 <= connections <= MAX_CONNECTIONS:
        print(f"kernlb demo: --connections must be 1..{MAX_CONNECTIONS}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="kernlb-demo-"))
    lab = Lab(workdir)
    demo = Demo(lab, out=stream, connections=connections, pause=pause, health_checks=health_checks)

    def close() -> None:
        if demo.zapi is not None:
            demo.zapi.close()
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)

    return run_story(
        demo.run,
        close,
        namespace_prefix=f"{lab.prefix}-",
        done="  kernlb and the web servers stopped; namespaces and temporary files deleted.",
        stream=stream,
    )


def prepare(stream: TextIO) -> bool:
    """Can a lab be built here (else say why on stderr)? Remove labs of killed demos."""
    reason = problem()
    if reason is not None:
        print(f"kernlb demo: {reason}", file=sys.stderr)
        return False
    stale = remove_stale_labs()
    if stale:
        print(f"removed a lab left by a killed demo: {', '.join(stale)}", file=stream)
    return True


def run_story(
    story: Callable[[], None],
    close: Callable[[], None],
    *,
    namespace_prefix: str,
    done: str,
    stream: TextIO,
) -> int:
    """Run ``story``, then ``close`` whatever happens (also on Ctrl-C, SIGTERM, SIGHUP); 0 when
    the story ran to its end, 130 when interrupted, 1 on a DemoError or when namespaces named
    ``namespace_prefix...`` are left."""
    result = 0
    with interrupts_as_keyboard_interrupt():
        try:
            story()
        except KeyboardInterrupt:
            print("\ninterrupted: removing the lab", file=stream, flush=True)
            result = 130
        except DemoError as exc:
            print(f"kernlb demo: {exc}", file=sys.stderr)
            result = 1
        finally:
            # A second Ctrl-C must not leave half a lab behind.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                close()
            finally:
                signal.signal(signal.SIGINT, previous)
    left = [name for name in netns_names() if name.startswith(namespace_prefix)]
    if left:
        print(f"kernlb demo: could not delete namespaces {left}", file=sys.stderr)
        return result or 1
    print(done, file=stream, flush=True)
    return result


def _backend_main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="kernlb demo backend: serves its own name")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--port", type=int, default=VPORT)
    args = parser.parse_args(argv)
    serve_backend(args.backend, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(_backend_main(sys.argv[1:]))
