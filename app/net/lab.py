"""A throw-away lab of network namespaces: the one used by `kernlb demo`, `bench/` and the tests.

It creates namespaces (``ip netns add``), veth pairs and addresses (``ip -n NS -batch``, every
interface made directly inside its namespace, so nothing is ever added to the root namespace),
starts processes inside them and stops them by PID, and runs Python callables from threads that
entered a namespace with ``setns(2)`` (pyroute2), so the sockets they open belong to it.

A :class:`Lab` remembers everything it made and :meth:`Lab.close` removes exactly that: it never
deletes a namespace or signals a process it did not create. Callers choose the name prefix; it
must contain their PID, because several labs (other test runs, other demos) coexist.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, ParamSpec, Protocol, TypeVar

from pyroute2 import netns as _pyroute2_netns

P = ParamSpec("P")
T = TypeVar("T")

NETNS_RUN_DIR = "/run/netns"


class LabCommandError(subprocess.SubprocessError):
    """A command of the lab failed; the message carries its output."""


# --- commands ------------------------------------------------------------------------------------


def run(
    cmd: Sequence[str],
    *,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 30,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise with its stderr when it fails."""
    proc = subprocess.run(
        list(cmd),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise LabCommandError(
            f"{' '.join(cmd)} -> rc={proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def ns_exec(ns: str, *cmd: str) -> list[str]:
    """The argv that runs ``cmd`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *cmd]


def ip_batch(ns: str, commands: Iterable[str]) -> None:
    """Run ``ip`` commands (``link add ...``, ``addr add ...``) inside a namespace, in one go."""
    text = "".join(f"{line}\n" for line in commands)
    if text:
        run(["ip", "-n", ns, "-batch", "-"], stdin=text)


def sysctl(ns: str, *settings: str, check: bool = True) -> None:
    """Set ``key=value`` sysctls inside a namespace."""
    for setting in settings:
        run(ns_exec(ns, "sysctl", "-qw", setting), check=check)


def veth(name: str, peer: str, peer_ns: str, *, master: str | None = None) -> list[str]:
    """``ip -batch`` lines: a veth pair ``name`` (here, up) -- ``peer`` (moved into ``peer_ns``)."""
    lines = [f"link add {name} type veth peer name {peer} netns {peer_ns}"]
    if master is not None:
        lines.append(f"link set {name} master {master}")
    lines.append(f"link set {name} up")
    return lines


def addresses(dev: str, ips: Iterable[str], prefixlen: int, *, extra: str = "") -> list[str]:
    """``ip -batch`` lines adding addresses ``ips``/``prefixlen`` to ``dev`` (``extra``: flags
    such as ``nodad``)."""
    suffix = f" {extra}" if extra else ""
    return [f"addr add {ip}/{prefixlen} dev {dev}{suffix}" for ip in ips]


def netns_names() -> list[str]:
    """Every named network namespace (``ip netns list``)."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_namespaces(pattern: str) -> list[str]:
    """Delete namespaces whose name matches ``pattern`` (a regex whose first group is the PID of
    the process that made them) when that process is gone: it was killed before cleaning up."""
    removed = []
    for name in netns_names():
        match = re.fullmatch(pattern, name)
        if match and not pid_alive(int(match.group(1))):
            run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    return removed


def unavailable_reason(probe_name: str, *, tools: Sequence[str] = ("ip", "nft")) -> str | None:
    """Why a lab cannot be built here (not root, a tool missing, no namespaces, no nftables in
    them), or None. ``probe_name`` (with the caller's PID) names the namespace it tries."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install iproute2 nftables)"
    lab = Lab()
    try:
        lab.add_netns(probe_name)
        if "nft" in tools:
            run(ns_exec(probe_name, "nft", "list", "ruleset"), timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"cannot use a network namespace with nftables (need CAP_NET_ADMIN): {exc}"
    finally:
        lab.close()
    return None


# --- processes -----------------------------------------------------------------------------------


class Process(Protocol):
    """A process to stop by PID: a ``subprocess.Popen``, or a handle on a process that is
    another process's child (the tests' zygote, tests/netns/zygote.py)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


def stop_process(proc: Process, *, grace: float = 5.0) -> None:
    """SIGTERM by PID, SIGKILL after ``grace`` seconds; always reaped, its pipes closed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # nothing if it was reaped meanwhile
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_for_line(proc: subprocess.Popen[bytes], expected: str, *, timeout: float) -> None:
    """Wait until the process prints ``expected`` on its stdout (a pipe)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if expected.encode() in seen:
                return
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"process {proc.args!r} not {expected!r} (rc={proc.poll()}): {seen!r}")


def file_tail(path: Path, lines: int = 30, *, missing: str = "") -> str:
    """The last `lines` lines of a process's log (`missing` when there is none yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return missing
    return "\n".join(text.splitlines()[-lines:])


def wait_tcp_reachable(ip: str, port: int, *, timeout: float) -> None:
    """Poll until a TCP connect to ip:port is answered (accepted or refused); raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except ConnectionRefusedError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def kernlb_serve_argv(
    *,
    port: int,
    db: Path | None,
    state_dir: Path,
    resync_interval: int,
    key: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``python -m app serve`` on plain HTTP at 127.0.0.1:``port``, for a lab namespace (the
    listener is only reachable from inside it), with its own SQLite file (``db``; None: the
    database KERNLB_DB names, e.g. a cluster's PostgreSQL) and state directory."""
    argv = [sys.executable, "-m", "app", "serve", "--no-tls", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--state-dir", str(state_dir)]
    if db is not None:
        argv += ["--db", f"sqlite:///{db}"]
    argv += ["--resync-interval", str(resync_interval)]
    if key is not None:
        argv += ["--key", key]
    return [*argv, *extra]


def pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --``: a child so started dies with us, even on SIGKILL."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, check=False)
    return [setpriv, "--pdeathsig", "KILL", "--"] if "--pdeathsig" in usage.stdout else []


# --- threads inside a namespace ------------------------------------------------------------------

_current = threading.local()


def enter_netns(name: str) -> None:
    """Move the calling thread (only it) into the namespace ``ip netns add NAME`` made."""
    # flags=0: never create the namespace (pyroute2's default would).
    _pyroute2_netns.setns(name, flags=0)
    _current.name = name


def current_netns() -> str | None:
    """Name of the namespace this thread entered through :func:`enter_netns`, if any."""
    name: str | None = getattr(_current, "name", None)
    return name


def netns_snapshot(*, skip_tables: Collection[str] = ()) -> list[str]:
    """How the calling thread's namespace is configured, as sorted lines: addresses, routes (every
    table) and nftables tables but those named ``skip_tables``. Link-local addresses and routes
    are left out: they appear a moment after a link comes up. Netlink, no process: call it from a
    :class:`NetnsExecutor` thread."""
    from nftables import Nftables
    from pyroute2 import IPRoute

    lines = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for addr in ipr.get_addr():
            ip = str(addr.get_attr("IFA_ADDRESS"))
            if not ip.startswith("fe80:"):
                lines.append(f"addr {names.get(addr['index'])} {ip}/{addr['prefixlen']}")
        for route in ipr.route("dump"):
            dst = str(route.get_attr("RTA_DST"))
            if dst.startswith(("fe80:", "ff00:")):
                continue
            gateway, table = route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_TABLE")
            dev = names.get(route.get_attr("RTA_OIF"))
            lines.append(f"route {table} {dst}/{route['dst_len']} via {gateway} dev {dev}")
    nft = Nftables()
    _rc, tables, _err = nft.cmd("list tables")
    lines += [
        line
        for line in tables.splitlines()
        if line.split()[-1:] != [] and line.split()[-1] not in skip_tables
    ]
    return sorted(lines)


class NetnsExecutor:
    """A thread pool whose workers all live in one network namespace (the caller's thread never
    changes namespace; a socket keeps its namespace whichever thread uses it later)."""

    def __init__(self, netns: str, *, workers: int = 1) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=f"ns-{netns}",
            initializer=enter_netns,
            initargs=(netns,),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self._pool.submit(fn, *args, **kwargs)

    def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the namespace and return its result (exceptions propagate)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def map_all(self, fns: Iterable[Callable[[], T]], *, timeout: float) -> list[T]:
        """Run zero-argument callables concurrently; results in submission order."""
        futures = [self._pool.submit(fn) for fn in fns]
        return [f.result(timeout=timeout) for f in futures]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> NetnsExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# --- the lab -------------------------------------------------------------------------------------


class Lab:
    """Namespaces, processes and namespace threads made for one purpose, removed together.

    ``die_with_parent`` starts every process with a parent-death signal (the demo: a lab whose
    owner is SIGKILLed must not keep servers running); ``new_session`` puts each in a session of
    its own (a terminal's Ctrl-C reaches only the owner, which stops them by PID)."""

    def __init__(
        self,
        *,
        workdir: Path | None = None,
        die_with_parent: bool = False,
        new_session: bool = False,
    ) -> None:
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.executors: list[NetnsExecutor] = []
        self._proc_ns: dict[int, str] = {}
        self._spawn_prefix = pdeathsig_prefix() if die_with_parent else []
        self._new_session = new_session

    def add_netns(self, name: str, *, no_dad: bool = False, rp_filter: bool = True) -> str:
        """Create namespace ``name`` with ``lo`` up. ``no_dad``: IPv6 addresses are usable at once
        (set before any interface exists, so every interface inherits it); ``rp_filter=False``:
        no reverse-path filtering (asymmetric lab routes)."""
        self.namespaces.append(name)  # first: an interrupt right after `add` still deletes it
        run(["ip", "netns", "add", name])
        if no_dad:
            sysctl(name, "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        if not rp_filter:
            sysctl(name, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
        return name

    def delete_netns(self, name: str) -> None:
        """Stop the processes started in ``name``, then delete it."""
        for proc in [p for p in self.procs if self._proc_ns.get(p.pid) == name]:
            self.stop(proc)
        if name in self.namespaces:
            run(["ip", "netns", "del", name], check=False)
            self.namespaces.remove(name)

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        stdout_pipe: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``ns``. Its stderr (and stdout unless ``stdout_pipe``) goes to
        ``log`` (appended) or nowhere; stop it with :meth:`stop` or :meth:`close`."""
        handle: IO[bytes] | None = log.open("ab") if log is not None else None
        sink: Any = handle if handle is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                [*self._spawn_prefix, *ns_exec(ns, *argv)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else sink,
                stderr=sink if stdout_pipe or handle is None else subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=self._new_session,
            )
        finally:
            if handle is not None:
                handle.close()
        self.procs.append(proc)
        self._proc_ns[proc.pid] = ns
        return proc

    def stop(self, proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
        """Stop a process this lab started (by PID) and forget it."""
        stop_process(proc, grace=grace)
        if proc in self.procs:
            self.procs.remove(proc)
        self._proc_ns.pop(proc.pid, None)

    def executor(self, ns: str, *, workers: int = 1) -> NetnsExecutor:
        """Threads inside ``ns``; shut down by :meth:`close`."""
        pool = NetnsExecutor(ns, workers=workers)
        self.executors.append(pool)
        return pool

    def close(self, *, grace: float = 5.0) -> None:
        """Threads, then processes (by PID), then namespaces: everything this lab made."""
        for pool in self.executors:
            pool.shutdown()
        self.executors.clear()
        for proc in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc, grace=grace)
        for name in reversed(self.namespaces):
            run(["ip", "netns", "del", name], check=False)
        self.namespaces.clear()


class BuiltOnLab:
    """A topology whose namespaces and processes live in one :class:`Lab` (``lab``):
    :meth:`build` makes it (``_build``), and removes what it made (``destroy``) if a step
    fails, so a half-built topology never outlives its owner."""

    lab: Lab

    @property
    def created(self) -> list[str]:
        """The namespaces made so far."""
        return self.lab.namespaces

    def build(self) -> None:
        try:
            self._build()
            self._built()
        except BaseException:
            self.destroy()
            raise

    def _build(self) -> None:
        raise NotImplementedError

    def _built(self) -> None:
        """Called when every step succeeded, still under the clean-up guard."""

    def destroy(self) -> None:
        raise NotImplementedError
