"""Runs HAProxy (master-worker) and makes it serve what the database says, hitlessly.

- A change that only touches servers' addresses, weights or maintenance goes through the
  runtime API (the worker's admin socket): no reload at all.
- Anything else is validated with `haproxy -c` (a refusal is a 400 and the transaction rolls
  back), written, and applied by a seamless reload through the master CLI: the new worker
  takes the listening sockets over (`expose-fd listeners`), old workers finish their requests.
- The configuration always describes the whole state (weights, drain as weight 0, cut as
  `disabled`), so a reload or a restart after a crash re-applies everything by itself.
- A supervisor thread restarts HAProxy if its master dies.

Only this module runs HAProxy; the renderer (config.py) is pure.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.errors import BadRequest
from app.haproxy.config import FG_RUNNER, Rendered, ServerState, render
from app.haproxy.model import HttpFarmSpec

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0
PEERS_SYNC_TIMEOUT = 7.0  # HAProxy gives up learning from a previous worker after 5 s


class ProxyRejected(BadRequest):
    """HAProxy refused the configuration (or could not run it): nothing was changed."""


@dataclass
class EngineStats:
    reloads: int = 0
    runtime_updates: int = 0
    restarts: int = 0
    starts: int = 0
    last_error: str = ""


SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes, the last one a NUL
_LONGEST_SOCKET = "master.sock"


def default_run_dir(state_dir: Path) -> Path:
    """Where HAProxy's Unix sockets live: `STATE_DIR/haproxy/run`, unless that makes a socket
    path too long for sun_path; then a short directory in /tmp named after the state dir."""
    inside = state_dir.resolve() / "haproxy" / "run"
    if len(str(inside / _LONGEST_SOCKET).encode()) <= SOCKET_PATH_MAX:
        return inside
    tag = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/tmp") / f"kernlb-haproxy-{tag}"


class HaproxyEngine:
    def __init__(
        self,
        *,
        state_dir: Path,
        run_dir: Path | None = None,
        binary: str = "haproxy",
        dry_run: bool = False,
    ) -> None:
        """`run_dir`: HAProxy's sockets (default: `default_run_dir`); kernlb creates it (0700,
        refusing one that another user owns) and removes it on close.
        `dry_run`: validate with `haproxy -c` and write the files, never run HAProxy (the
        API tests, whose kernel is a fake)."""
        self.dry_run = dry_run
        self.dir = state_dir / "haproxy"
        self.run_dir = run_dir if run_dir is not None else default_run_dir(state_dir)
        if len(str(self.run_dir / _LONGEST_SOCKET).encode()) > SOCKET_PATH_MAX:
            raise ValueError(f"{self.run_dir}: too long a directory for Unix sockets")
        self.binary = binary
        self.config_path = self.dir / "haproxy.cfg"
        self.candidate_path = self.dir / "candidate.cfg"
        self.pid_path = self.dir / "haproxy.pid"
        self.log_path = self.dir / "haproxy.log"
        self.admin_socket = self.run_dir / "admin.sock"
        self.master_socket = self.run_dir / "master.sock"
        self.peer_socket = self.run_dir / "peers.sock"
        self.lock = threading.RLock()
        self.stats = EngineStats()
        self.current: Rendered | None = None  # what HAProxy runs
        self._inputs: tuple[list[HttpFarmSpec], dict[str, str]] = ([], {})
        self._staged: tuple[Rendered | None, tuple[list[HttpFarmSpec], dict[str, str]]] | None
        self._staged = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._workers_seen: set[int] = set()  # to reap them if their master dies
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    # -- the unit of work: stage (apply), then confirm or abandon -------------------------

    def stage(self, farms: Iterable[HttpFarmSpec], certificates: dict[str, str]) -> str:
        """Apply this desired state now; remember what ran before in case the DB fails."""
        with self.lock:
            before = (self.current, self._inputs)
            inputs = (list(farms), dict(certificates))
            how = self._apply(*inputs)
            self._staged = before
            self._inputs = inputs
            return how

    def confirm(self) -> None:
        with self.lock:
            self._staged = None

    def abandon(self) -> None:
        """The database did not commit what was staged: go back to what ran before."""
        with self.lock:
            staged, self._staged = self._staged, None
            if staged is None:
                return
            _previous, inputs = staged
            log.warning("http farm change not committed; putting HAProxy back")
            try:
                self._apply(*inputs)
                self._inputs = inputs
            except ProxyRejected:
                log.exception("could not put HAProxy back to the previous configuration")

    def sync(self, farms: Iterable[HttpFarmSpec], certificates: dict[str, str]) -> None:
        """Start-up and recovery: make HAProxy run exactly this state."""
        with self.lock:
            inputs = (list(farms), dict(certificates))
            self._apply(*inputs)
            self._inputs = inputs

    # -- rendering and applying -----------------------------------------------------------

    def render(self, farms: list[HttpFarmSpec], certificates: dict[str, str]) -> Rendered:
        sockets = {"admin_socket": str(self.admin_socket), "peer_socket": str(self.peer_socket)}
        draft = render(farms, **sockets, assets="", certificates=certificates)
        return render(
            farms, **sockets, assets=str(self._assets_dir(draft)), certificates=certificates
        )

    def _assets_dir(self, rendered: Rendered) -> Path:
        # Content-addressed: the same pages and certificates always live in the same directory,
        # so a runtime-only change keeps pointing at the files the running worker loaded.
        sha = hashlib.sha256()
        for name in sorted(rendered.files):
            sha.update(name.encode() + b"\0" + rendered.files[name] + b"\0")
        return self.dir / f"assets-{sha.hexdigest()[:16]}"

    def _apply(self, farms: list[HttpFarmSpec], certificates: dict[str, str]) -> str:
        rendered = self.render(farms, certificates)
        if rendered.listeners == 0:
            self._stop_process()
            self._remove_run_dir()
            self.current = rendered
            return "stopped"
        if self.dry_run:
            self._write_assets(rendered)
            self._write(self.candidate_path, rendered.config)
            self._check(self.candidate_path)
            os.replace(self.candidate_path, self.config_path)
            self.current = rendered
            return "checked"
        alive = self._alive()
        if alive and self.current is not None and self.current.same_shape(rendered):
            if rendered.servers == self.current.servers:
                return "unchanged"
            if self._runtime(self.current, rendered):
                self._write(self.config_path, rendered.config)
                self.current = rendered
                self.stats.runtime_updates += 1
                return "runtime"
        self._write_assets(rendered)
        self._write(self.candidate_path, rendered.config)
        self._check(self.candidate_path)
        os.replace(self.candidate_path, self.config_path)
        if alive:
            # Both workers keep stick tables: the old one teaches its tables only once its
            # own resync is over, and the new one has them when it says so.
            sticky = self.current is not None and self.current.peers and rendered.peers
            if sticky:
                self._wait_peers_synced()
            self._reload()
            if sticky:
                self._wait_peers_synced()
            self.stats.reloads += 1
            how = "reload"
        else:
            self._start()
            how = "start"
        self.current = rendered
        self._remove_old_assets(rendered)
        return how

    def _write(self, path: Path, text: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def _write_assets(self, rendered: Rendered) -> None:
        assets = self._assets_dir(rendered)
        assets.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, content in rendered.files.items():
            target = assets / name
            if not target.exists() or target.read_bytes() != content:
                tmp = target.with_suffix(".tmp")
                mode = 0o700 if name == FG_RUNNER else 0o600  # HAProxy executes the runner
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                with os.fdopen(fd, "wb") as out:
                    out.write(content)
                os.replace(tmp, target)

    def _remove_old_assets(self, rendered: Rendered) -> None:
        keep = self._assets_dir(rendered)
        for path in self.dir.glob("assets-*"):
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)

    def _check(self, path: Path) -> None:
        try:
            result = subprocess.run(
                [self.binary, "-c", "-f", str(path)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProxyRejected(f"HAProxy could not check the configuration: {exc}") from exc
        if result.returncode != 0:
            alerts = [
                line.split(":", 2)[-1].strip()
                for line in (result.stdout + result.stderr).splitlines()
                if "ALERT" in line
            ]
            detail = "; ".join(alerts[:3]) or result.stderr.strip()[-500:]
            self.stats.last_error = detail
            log.error("haproxy -c refused the configuration:\n%s", result.stderr)
            raise ProxyRejected(f"HAProxy rejected the configuration: {detail}")

    # -- the runtime API ------------------------------------------------------------------

    def _runtime(self, old: Rendered, new: Rendered) -> bool:
        """Apply server changes through the admin socket; False: a reload must do it."""
        commands: list[str] = []
        for key, state in sorted(new.servers.items()):
            before = old.servers.get(key)
            if before is None:
                return False
            commands += _server_commands(f"{key[0]}/{key[1]}", before, state)
        try:
            for command in commands:
                answer = self._socket_command(self.admin_socket, command).strip()
                if answer and not answer.startswith(
                    ("IP changed", "port changed", "no need to change")
                ):
                    log.warning("runtime API refused %r: %s; reloading instead", command, answer)
                    return False
        except OSError as exc:
            log.warning("runtime API unreachable (%s); reloading instead", exc)
            return False
        return True

    def _socket_command(self, path: Path, command: str, *, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)  # one command: the CLI answers, then closes
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def show_stat(self) -> list[dict[str, str]]:
        """`show stat` as rows (pxname, svname, scur, qcur, stot, status, ...); [] if stopped."""
        if not self._alive():
            return []
        try:
            text = self._socket_command(self.admin_socket, "show stat")
        except OSError:
            return []
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("# "):
            return []
        header = lines[0][2:].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]

    def down_servers(self) -> frozenset[int]:
        """The servers (`s<id>`) whose health check fails now, as HAProxy's stats show them."""
        return frozenset(
            int(row["svname"][1:])
            for row in self.show_stat()
            if row.get("status", "").startswith("DOWN")
            and row.get("svname", "")[:1] == "s"
            and row["svname"][1:].isdigit()
        )

    def show_table(self, backend: str) -> list[dict[str, str]]:
        """A backend's stick table entries (persistence sessions)."""
        if not self._alive():
            return []
        try:
            text = self._socket_command(self.admin_socket, f"show table {backend}")
        except OSError:
            return []
        entries = []
        for line in text.splitlines():
            if not line.startswith("0x"):
                continue
            fields = dict(
                part.split("=", 1) for part in line.split(": ", 1)[-1].split() if "=" in part
            )
            entries.append(fields)
        return entries

    # -- the process ----------------------------------------------------------------------

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self) -> None:
        self._kill_stale()
        self._make_run_dir()
        for path in (self.admin_socket, self.master_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        command = [
            self.binary,
            "-W",
            "-S",
            f"{self.master_socket},mode,600",
            "-f",
            str(self.config_path),
            "-p",
            str(self.pid_path),
        ]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group (a Ctrl-C meant for kernlb is kernlb's to relay), but not
                # its own session: a new session is a new scheduler autogroup, which on a busy
                # host halved HAProxy's throughput (docs/http-farms.md, figures).
                process_group=0,
            )
        self.stats.starts += 1
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                self.proc = None
                raise ProxyRejected(f"HAProxy could not start: {tail}")
            workers, _failed = self._workers()
            if workers and self._admin_pid() in workers:
                self._workers_seen = workers
                self._ensure_supervisor()
                return
            time.sleep(0.05)
        self._stop_process()
        raise ProxyRejected("HAProxy did not become ready in time.")

    def _make_run_dir(self) -> None:
        """Ours alone: a directory (not a link) owned by this user, mode 0700, so nobody else
        can put a socket where kernlb will connect (the default may be in /tmp)."""
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(self.run_dir)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise ProxyRejected(f"{self.run_dir} is not a directory of kernlb's own.")
        os.chmod(self.run_dir, 0o700)

    def _remove_run_dir(self) -> None:
        for path in (self.admin_socket, self.master_socket, self.peer_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(OSError):  # not empty: something else lives there, keep it
            self.run_dir.rmdir()

    def _reload(self) -> None:
        before, failed_before = self._workers()
        # The master re-executes itself and may drop this connection: expected.
        with contextlib.suppress(OSError):
            self._socket_command(self.master_socket, "reload", timeout=2.0)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self._alive():
                raise ProxyRejected(f"HAProxy died while reloading: {self._log_tail()}")
            workers, failed = self._workers()
            if failed > failed_before:
                raise ProxyRejected(
                    f"HAProxy could not load the new configuration: {self._log_tail()}"
                )
            if workers and not workers & before and self._admin_pid() in workers:
                self._workers_seen |= workers
                return
            time.sleep(0.05)
        raise ProxyRejected("HAProxy did not finish reloading in time.")

    def _wait_peers_synced(self, timeout: float = PEERS_SYNC_TIMEOUT) -> bool:
        """Until the worker's local peer has finished its resync (`show peers` flags 0x3:
        learnt from the previous worker, or given up waiting for one, HAProxy's 5 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = self._socket_command(self.admin_socket, "show peers", timeout=2.0)
            except OSError:
                return False
            for line in text.splitlines():
                if " flags=0x" in line and " id=" in line and "disabled=" in line:
                    flags = int(line.split(" flags=0x", 1)[1].split()[0], 16)
                    if flags & 0x3 == 0x3:
                        return True
            time.sleep(0.1)
        log.warning("HAProxy's stick tables were not synchronised within %.0f s", timeout)
        return False

    def _workers(self) -> tuple[set[int], int]:
        """Current worker PIDs and the master's count of failed reloads."""
        try:
            text = self._socket_command(self.master_socket, "show proc", timeout=2.0)
        except OSError:
            return set(), 0
        workers: set[int] = set()
        failed = 0
        section = ""
        for line in text.splitlines():
            if line.startswith("#"):
                section = line
                continue
            parts = line.split()
            if not parts or not parts[0].isdigit():
                continue
            if len(parts) > 1 and parts[1] == "master" and "failed:" in line:
                failed = int(line.split("failed:", 1)[1].split("]", 1)[0].strip() or 0)
            elif section.startswith("# workers") and len(parts) > 1 and parts[1] == "worker":
                workers.add(int(parts[0]))
        return workers, failed

    def _admin_pid(self) -> int:
        try:
            text = self._socket_command(self.admin_socket, "show info", timeout=2.0)
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":", 1)[1].strip())
        return 0

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        alerts = [line for line in lines[-40:] if "ALERT" in line]
        return " | ".join(alerts[-3:] or lines[-3:])

    def _kill_stale(self) -> None:
        """A master left by a kernlb killed with SIGKILL, or workers whose master died, hold
        our ports: stop them (by PID, and only if their command line names our configuration)."""
        pids = set(self._workers_seen)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.add(int(self.pid_path.read_text().split()[0]))
        self._workers_seen = set()
        ours = str(self.config_path).encode()
        stale = []
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ours in cmdline and (self.proc is None or self.proc.pid != pid):
                log.warning("stopping HAProxy process %d left over", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                stale.append(pid)
        for pid in stale:
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    # -- supervision ----------------------------------------------------------------------

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(
                target=self._supervise, name="haproxy-supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            proc.wait()
            if self._stopping.is_set():
                return
            with self.lock:
                if proc is not self.proc:
                    continue  # stopped or replaced on purpose
                log.error(
                    "HAProxy exited (rc=%s): %s; restarting it", proc.returncode, self._log_tail()
                )
                self.proc = None
                self.stats.restarts += 1
                time.sleep(0.5)
                try:
                    if self.current is not None and self.current.listeners:
                        self._start()
                except ProxyRejected as exc:
                    log.error("HAProxy restart failed: %s", exc.message)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self.lock:
            self._stop_process()
            self._remove_run_dir()


def _server_commands(target: str, before: ServerState, after: ServerState) -> list[str]:
    """Runtime commands taking a server from `before` to `after`, ordered so that no request
    reaches it in between: out of rotation first, values, back into rotation last."""
    commands = []
    if after.maint and not before.maint:
        commands.append(f"set server {target} state maint")
        commands.append(f"shutdown sessions server {target}")
        if after.sticky:
            # As Zevenet's cut: its persistence entries go too (clients re-stick elsewhere).
            table = target.split("/", 1)[0]
            commands.append(f"clear table {table} data.server_id eq {after.server_id}")
    if (before.ip, before.port) != (after.ip, after.port):
        commands.append(f"set server {target} addr {after.ip} port {after.port}")
    if before.weight != after.weight:
        commands.append(f"set server {target} weight {after.weight}")
    if before.maint and not after.maint:
        commands.append(f"set server {target} state ready")
    return commands
