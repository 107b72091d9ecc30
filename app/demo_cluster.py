"""`kernlb demo --cluster`: two load balancers, one PostgreSQL, a failover that keeps connections.

    client 198.18.20.2 ── front ── lb1 (priority 150) / lb2 (100)   VIP 198.18.20.100 (VRRP)
                                   lb1 ═══ sync link (conntrackd) ═══ lb2
    b1 .21.21, b2 .21.22 ── back ── lb1 / lb2                        gateway VIP 198.18.21.1

The lab is the cluster tests' (app/net/cluster_lab.py): namespaces, an echo backend per backend
namespace, and per LB namespace kernlb (cluster mode, a throw-away PostgreSQL both reach over a
Unix socket), conntrackd and keepalived on the files kernlb rendered.  The story: a farm made
through lb1's API reaches lb2's kernel; held connections and a steady client run through lb1;
lb1's kernlb and keepalived are SIGKILLed; lb2 takes the VIP and the connections live on.  It
prints the figures (takeover time, held connections alive, new connections that failed) and
exits 0 only when the failover kept every held connection.

Every process is stopped by PID and every namespace deleted at the end (also on Ctrl-C,
SIGTERM, SIGHUP); children die with the demo (parent-death signal), and the namespaces of a
demo killed outright are removed by the next one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from app.demo import (
    API_PORT,
    PREFIX,
    DemoError,
    Zapi,
    _python_env,
    prepare,
    run_story,
    wait_ready,
)
from app.net.cluster_lab import BACKENDS, CLIENT_SOURCES, VIP, ClusterLab, LbNode
from app.net.lab import (
    Lab,
    LabCommandError,
    kernlb_serve_argv,
    ns_exec,
    pdeathsig_prefix,
    run,
)
from app.net.traffic import Client, HeldConnection, LoadGenerator

FARM = "web"
VPORT = 80
TAKEOVER_LIMIT = 3.0  # seconds: the bound for the VIP to be on the other node
STEPS = 6


class DemoKernlb:
    """`kernlb serve` in one LB namespace, in cluster mode (`env`), spawned by the lab."""

    def __init__(self, lab: Lab, ns: str, state_dir: Path, env: dict[str, str], key: str) -> None:
        self.lab = lab
        self.ns = ns
        self.state_dir = state_dir
        self.env = env
        self.key = key
        self.zapi = Zapi(lab.executor(ns), key)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.state_dir / "kernlb.log"

    def start(self, *, timeout: float = 60.0) -> None:
        argv = kernlb_serve_argv(
            port=API_PORT, db=None, state_dir=self.state_dir, resync_interval=30
        )
        env = {**_python_env(), **self.env, "KERNLB_ZAPI_KEY": self.key}
        self.proc = self.lab.spawn(self.ns, argv, log=self.log, env=env)
        wait_ready(self.zapi, self.proc, self.log, timeout=timeout)

    def kill9(self) -> int:
        """SIGKILL by PID: a crash. The PID."""
        assert self.proc is not None
        pid = self.proc.pid
        os.kill(pid, 9)
        self.proc.wait(timeout=10)
        self.lab.stop(self.proc)
        self.proc = None
        return pid

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, parsed = self.zapi.request(method, path, body)
        return status, parsed

    def close(self) -> None:
        self.zapi.close()
        if self.proc is not None:
            self.lab.stop(self.proc)
            self.proc = None


class ClusterDemo:
    def __init__(self, *, out: TextIO, held: int, workdir: Path) -> None:
        self.out = out
        self.held_count = held
        self.workdir = workdir
        self.key = secrets.token_hex(16)
        self.prefix = f"{PREFIX}{os.getpid()}-c"
        self.postgres: Any = None  # ThrowawayPostgres, imported when the demo runs
        self.netns_lab = Lab(workdir=workdir, die_with_parent=True, new_session=True)
        self.cluster: ClusterLab[DemoKernlb] | None = None
        self.held: list[HeldConnection] = []
        self.stopped: list[str] = []
        self.outcome: str | None = None

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, number: int, title: str) -> None:
        self.say(f"\n[{number}/{STEPS}] {title}")

    # -- the story ---------------------------------------------------------------------------

    def run(self) -> None:
        self.say("kernlb demo --cluster: two load balancers share one PostgreSQL database;")
        self.say("keepalived (VRRP) moves the VIP, conntrackd copies the connections.")
        self.say()
        self.say(f"  client --> VIP {VIP}:{VPORT} --> lb1 (priority 150) or lb2 (priority 100)")
        self.say(f"         --> backends {', '.join(f'{n} {ip}' for n, ip in BACKENDS.items())}")

        self.step(1, "Building the lab: PostgreSQL, namespaces, backends")
        started = time.monotonic()
        db_url = self.start_postgres()
        cluster = self.cluster = ClusterLab(
            self.workdir,
            db_url,
            prefix=self.prefix,
            server_factory=self.make_server,
            lab=self.netns_lab,
        )
        try:
            cluster.build()
        except (LabCommandError, RuntimeError) as exc:
            raise DemoError(str(exc)) from exc
        self.say(f"  namespaces: {', '.join(cluster.created)}")
        for name, proc in cluster.backends.items():
            self.say(f"  backend {name} {BACKENDS[name]} (echo server, pid {proc.pid})")
        self.say(f"  ready in {time.monotonic() - started:.1f} s")

        self.step(2, "Starting kernlb, conntrackd and keepalived on lb1 and lb2")
        for name in ("lb1", "lb2"):
            self.start_node(name)

        self.step(3, f"Creating farm {FARM!r} through lb1's API (ZAPI v3.1)")
        lb1, lb2 = cluster.nodes["lb1"], cluster.nodes["lb2"]
        self.create_farm(lb1)
        self.wait_follower(lb2)
        try:
            took = cluster.wait_master("lb1", timeout=20)
        except AssertionError as exc:
            raise DemoError(str(exc)) from exc
        self.say(f"  keepalived reloaded with the VIP: lb1 is MASTER ({took:.1f} s later)")

        self.step(4, f"Traffic through lb1: {self.held_count} held connections, a steady client")
        client = Client(self.client_exec())
        self.open_held()
        time.sleep(0.5)  # conntrackd copies a new connection to lb2 within milliseconds
        load = LoadGenerator(
            client, VIP, VPORT, CLIENT_SOURCES[:4], pause=0.02, timeout=2.0, max_seconds=120
        ).start()
        try:
            load.wait_for(50)
            self.say("  steady client: 4 threads, each a new connection every 20 ms")
            self.say(f"  {load.count()} new connections so far")

            self.step(5, "Failover: lb1's kernlb and keepalived are killed (SIGKILL)")
            load.event("failover")
            killed = time.monotonic()
            kernlb_pid = lb1.server.kill9()
            keepalived_pids = lb1.kill_keepalived()
            pids = ", ".join(map(str, keepalived_pids))
            self.say(f"  SIGKILL kernlb (pid {kernlb_pid}) and keepalived (pids {pids}) on lb1")
            try:
                cluster.wait_master("lb2", timeout=10, exclusive=False)
            except AssertionError as exc:
                raise DemoError(f"lb2 did not take over: {exc}") from exc
            takeover = time.monotonic() - killed
            self.say(f"  VIP moved to lb2 in {takeover:.2f} s")
            alive = self.exchange_held()
            load.wait_for(50)
        finally:
            report = load.stop()
        self.say(f"  held connections: {alive}/{self.held_count} still exchanging data through lb2")
        self.say(f"  new connections: {report.total} made, {report.failure_window()}")
        answered = Counter(o.hello.backend for o in report.outcomes[-20:] if o.hello is not None)
        self.say(f"  the last 20 were answered by {dict(sorted(answered.items()))}")
        if self.client_follows(lb2):
            self.say("  the client's ARP entry for the VIP is lb2's MAC (its gratuitous ARPs)")
        self.show_cluster(lb2)

        self.step(6, "Removing the lab")
        ok = alive == self.held_count and takeover <= TAKEOVER_LIMIT
        self.outcome = (
            f"  result: VIP moved in {takeover:.2f} s, {alive}/{self.held_count} held connections "
            f"alive, {len(report.failures)} of {report.total} new connections failed"
        )
        self.say(self.outcome)
        if not ok:
            raise DemoError(
                f"the failover lost connections or took longer than {TAKEOVER_LIMIT:.0f} s: "
                f"{alive}/{self.held_count} alive, takeover {takeover:.2f} s"
            )

    # -- pieces --------------------------------------------------------------------------------

    def start_postgres(self) -> str:
        from app.db.throwaway_postgres import ThrowawayPostgres, unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise DemoError(f"needs PostgreSQL: {reason}")
        server = self.postgres = ThrowawayPostgres(spawn_prefix=pdeathsig_prefix())
        try:
            server.start()
            url = server.create_database("demo")
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            raise DemoError(f"PostgreSQL did not start: {exc}") from exc
        assert server.proc is not None
        self.say(
            f"  PostgreSQL (pid {server.proc.pid}): initdb in {server.root}, "
            "Unix socket only, one database migrated to kernlb's schema"
        )
        return str(url)

    def make_server(self, ns: str, state_dir: Path, env: dict[str, str]) -> DemoKernlb:
        return DemoKernlb(self.netns_lab, ns, state_dir, env, self.key)

    def client_exec(self) -> Any:
        assert self.cluster is not None and self.cluster.client_exec is not None
        return self.cluster.client_exec

    def start_node(self, name: str) -> None:
        assert self.cluster is not None
        node = self.cluster.nodes[name]
        started = time.monotonic()
        node.server.start()
        conntrackd = node.start_conntrackd()
        keepalived = node.start_keepalived()
        assert node.server.proc is not None
        self.say(
            f"  {name}: kernlb pid {node.server.proc.pid} (answers after "
            f"{time.monotonic() - started:.1f} s), conntrackd pid {conntrackd}, "
            f"keepalived pid {keepalived}, priority {node.priority}"
        )

    def must(
        self, node: LbNode[DemoKernlb], expected: int, method: str, path: str, body: Any
    ) -> Any:
        status, parsed = node.server.request(method, path, body)
        self.say(f"  {node.name}: {method} {path} -> {status}")
        if status != expected:
            raise DemoError(f"{method} {path} on {node.name} answered {status}: {parsed}")
        return parsed

    def create_farm(self, node: LbNode[DemoKernlb]) -> None:
        farm = {"farmname": FARM, "profile": "l4xnat", "vip": VIP, "vport": str(VPORT)}
        self.must(node, 201, "POST", "/farms", farm)
        # dnat: the backends answer through the floating gateway, i.e. the VIP's owner.
        self.must(node, 200, "PUT", f"/farms/{FARM}", {"nattype": "dnat"})
        for ip in BACKENDS.values():
            self.must(node, 201, "POST", f"/farms/{FARM}/backends", {"ip": ip, "port": VPORT})

    def wait_follower(self, node: LbNode[DemoKernlb]) -> None:
        """Until `node` applied the latest revision to its kernel (GET /system/cluster)."""
        started = time.monotonic()
        while time.monotonic() - started < 15:
            status, body = node.server.request("GET", "/system/cluster")
            if status == 200:
                params = body["params"]
                own = next(n for n in params["nodes"] if n["node"] == "local")
                if own["lag"] == 0 and own["revision"] == params["revision"]:
                    self.say(
                        f"  {node.name} applied revision {own['revision']} to its kernel "
                        f"{(time.monotonic() - started) * 1000:.0f} ms after the last write "
                        "(LISTEN/NOTIFY)"
                    )
                    return
            time.sleep(0.05)
        raise DemoError(f"{node.name} did not follow the database within 15 s")

    def open_held(self) -> None:
        executor = self.client_exec()
        for i in range(self.held_count):
            source = CLIENT_SOURCES[i % len(CLIENT_SOURCES)]
            self.held.append(executor.run(HeldConnection.open, VIP, VPORT, source=source))
        per_backend = Counter(c.hello.backend for c in self.held)
        alive = self.exchange_held()
        self.say(
            f"  {self.held_count} held connections open ({dict(sorted(per_backend.items()))}); "
            f"{alive} echo a line"
        )

    def exchange_held(self) -> int:
        executor = self.client_exec()
        outcomes = [executor.run(c.exchange_outcome, timeout=8.0) for c in self.held]
        return outcomes.count("alive")

    def client_follows(self, node: LbNode[DemoKernlb]) -> bool:
        """Does the client's neighbour entry for the VIP name `node`'s front MAC?"""
        assert self.cluster is not None
        mac = run(ns_exec(node.ns, "cat", "/sys/class/net/f0/address"), check=False).stdout
        neigh = run(["ip", "-n", self.cluster.ns("cli"), "neigh", "show", VIP], check=False)
        return bool(mac.strip()) and f"lladdr {mac.strip()} " in f"{neigh.stdout} "

    def show_cluster(self, node: LbNode[DemoKernlb]) -> None:
        status, body = node.server.request("GET", "/system/cluster")
        if status != 200:
            return
        params = body["params"]
        self.say(f"  GET /system/cluster on lb2: health checks led by {params['health_leader']}")
        for n in params["nodes"]:
            self.say(
                f"    {n['name']:<4} role {n['role'] or '-':<7} status {n['status']:<12} "
                f"revision {n['revision']}, last heartbeat {n['seen_seconds_ago']} s ago"
            )

    def close(self) -> None:
        """Everything, by PID: held sockets, the lab's processes and namespaces, PostgreSQL."""
        for connection in self.held:
            connection.close()
        self.held.clear()
        pids = [p.pid for p in self.netns_lab.procs]
        if self.cluster is not None:
            self.cluster.destroy()
        else:
            self.netns_lab.close()
        if pids:
            self.stopped.append(f"processes {', '.join(map(str, sorted(pids)))}")
        if self.postgres is not None:
            if self.postgres.proc is not None:
                self.stopped.append(f"PostgreSQL {self.postgres.proc.pid}")
            self.postgres.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def cluster_problem() -> str | None:
    from app.cluster.runtime import find_program

    for daemon in ("keepalived", "conntrackd"):
        if find_program(daemon) is None:
            return f"needs {daemon} (apt-get install keepalived conntrackd)"
    return None


def run_cluster_demo(*, held: int = 20, out: TextIO | None = None) -> int:
    """The cluster demo; 0 when the failover kept every held connection, 130 when interrupted,
    1 on failure, 2 when it cannot run here."""
    stream = out if out is not None else sys.stdout
    if not prepare(stream):
        return 2
    reason = cluster_problem()
    if reason is not None:
        print(f"kernlb demo --cluster: {reason}", file=sys.stderr)
        return 2
    if not 1 <= held <= 200:
        print("kernlb demo --cluster: --held must be 1..200", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="kernlb-demo-cluster-"))
    os.chmod(workdir, 0o755)  # keepalived's script security: no group/other write on the path
    demo = ClusterDemo(out=stream, held=held, workdir=workdir)

    def close() -> None:
        demo.close()
        print(f"  stopped by PID: {'; '.join(demo.stopped) or 'nothing'}", file=stream)

    return run_story(
        demo.run,
        close,
        namespace_prefix=demo.prefix,
        done="  namespaces and temporary files deleted.",
        stream=stream,
    )
