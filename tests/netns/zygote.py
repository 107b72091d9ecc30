"""`kernlb serve` forked from a pre-imported process: one zygote per pytest worker.

Importing the app (FastAPI, the pydantic models, SQLAlchemy, Alembic, uvicorn) costs a
`python -m app serve` ~1 s of CPU before it does anything; the namespace tests start ~50
servers per run.  The zygote imports all of that once, then forks a server for each start:

- the worker starts it lazily (:func:`worker_zygote`), in the worker's own namespace, and
  closes it by PID at the end of the session (``tests/conftest.py``); it also exits, killing
  its children, as soon as its control socket closes (the worker died);
- a child does what ``ip netns exec NS`` does (iproute2's ``netns_switch``): ``setns`` into
  /run/netns/NS, ``unshare(CLONE_NEWNS)``, ``/`` made a slave mount tree, a fresh sysfs on
  /sys (so /sys/class/net lists the namespace's links); then a new session, stdin from
  /dev/null, stdout and stderr appended to the log, the cwd and the environment of the request
  (the worker's at that moment), signal handlers, signal mask and collector as a fresh
  interpreter has them, every zygote descriptor closed, and ``app.cli.main`` with the argv
  after ``python -m app``;
- the worker gets a :class:`ZygoteProcess`, a ``Popen``-like handle on a process that is the
  zygote's child: signals go through a pidfd (never to a reused PID), and the exit status is
  the one the zygote reaped (``-N`` for signal N, as ``Popen.returncode``).

``KERNLB_TEST_ZYGOTE=0`` starts the real ``ip netns exec NS python -m app serve`` instead (see
tests/netns/README.md); ``test_harness.py`` always starts one real command line.

The zygote imports nothing but the app's modules: no engine, loop, thread or nftables context
exists in it before a fork (checked at its start: one thread, no descriptor but the standard
three and its socket).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from pyroute2 import netns as pyroute2_netns

from app.net.lab import enter_netns as enter_netns_of_thread
from app.net.lab import file_tail

REPO = Path(__file__).resolve().parents[2]
SWITCH = "KERNLB_TEST_ZYGOTE"
MODULE = "tests.netns.zygote"
SETUP_FAILED = 126  # exit status of a child that could not enter the namespace or open its log

# <sched.h>, <sys/mount.h>, <sys/prctl.h>
CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REC = 1 << 14
MS_SLAVE = 1 << 19
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def enabled() -> bool:
    """Whether tests start kernlb through the zygote (``KERNLB_TEST_ZYGOTE``, default on)."""
    return os.environ.get(SWITCH, "1") != "0"


# --- the worker's side ---------------------------------------------------------------------------


class ZygoteError(RuntimeError):
    """The zygote refused a request or is gone; the message carries its log."""


class ZygoteProcess:
    """A ``subprocess.Popen``-like handle on a server the zygote forked (not our child)."""

    stdin: IO[bytes] | None = None
    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None

    def __init__(self, zygote: Zygote, pid: int, pidfd: int, args: list[str]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.args = args
        self._pidfd = pidfd
        self._returncode: int | None = None

    def __repr__(self) -> str:
        return f"<ZygoteProcess pid={self.pid} returncode={self._returncode}>"

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def _exited(self, status: int) -> None:
        """Called by the zygote's reader, under its lock."""
        self._returncode = status
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def poll(self) -> int | None:
        return self._returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._zygote.wait_exit(self, timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self._returncode is not None
        return self._returncode

    def send_signal(self, sig: int) -> None:
        """Signal the process unless it has been reaped (through its pidfd: a PID that the
        system gave to another process since cannot be hit)."""
        with self._zygote.lock:
            if self._returncode is None and self._pidfd >= 0:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The zygote process and its control socket (SOCK_SEQPACKET: one JSON message each)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_fd, log = tempfile.mkstemp(prefix=f"kernlb-zygote-{os.getpid()}-", suffix=".log")
        self.log_path = Path(log)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", MODULE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                # Not in the terminal's process group: a Ctrl-C reaches the worker, which
                # closes the zygote (and the zygote its children).
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            theirs.close()
            os.close(log_fd)
        self._sock = ours
        self.lock = threading.Condition()
        self._children: dict[int, ZygoteProcess] = {}
        self._replies: list[tuple[dict[str, Any], ZygoteProcess | None]] = []
        self._gone = False
        self._reader = threading.Thread(
            target=self._read, name=f"zygote-{self.proc.pid}", daemon=True
        )
        self._reader.start()
        try:
            self._reply(timeout=60)  # "ready": the imports are done
        except BaseException:
            self.close()
            raise

    # One thread reads every message: exits are recorded as they come, whoever waits.
    def _read(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._sock, 65536, 1)
            except OSError:
                data, fds = b"", []
            with self.lock:
                if not data:
                    self._gone = True
                    # Children of a zygote that died are SIGKILLed (PR_SET_PDEATHSIG).
                    for child in self._children.values():
                        child._exited(-signal.SIGKILL)
                    self._children.clear()
                    self.lock.notify_all()
                    return
                message = json.loads(data)
                if "exited" in message:
                    child = self._children.pop(message["exited"], None)
                    if child is not None:
                        child._exited(message["status"])
                elif "spawned" in message:
                    # Registered here, not by the requester: its exit may be the next message.
                    pid = message["spawned"]
                    handle = ZygoteProcess(self, pid, fds.pop(0), message["args"])
                    self._children[pid] = handle
                    self._replies.append((message, handle))
                else:
                    self._replies.append((message, None))
                for fd in fds:
                    os.close(fd)
                self.lock.notify_all()

    def _reply(self, *, timeout: float) -> tuple[dict[str, Any], ZygoteProcess | None]:
        with self.lock:
            if not self.lock.wait_for(lambda: self._replies or self._gone, timeout):
                # Its late reply would be taken for the next request's: never ask it again
                # (worker_zygote starts a new one).
                self._gone = True
                raise ZygoteError(f"the zygote did not answer in {timeout} s:\n{self.log_tail()}")
            if not self._replies:
                raise ZygoteError(f"the zygote is gone (rc={self.proc.poll()}):\n{self.log_tail()}")
            message, handle = self._replies.pop(0)
        if "error" in message:
            raise ZygoteError(f"the zygote refused: {message['error']}")
        return message, handle

    def alive(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def spawn(
        self,
        netns: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
    ) -> ZygoteProcess:
        """``python -m app ARGS`` (e.g. ``serve --port ...``) inside ``netns``, as ``ip netns
        exec`` would run it, with exactly ``env`` as its environment; output appended to
        ``log``."""
        request = {
            "netns": netns,
            "args": list(args),
            "env": dict(env),
            "cwd": str(cwd),
            "log": str(log),
        }
        with self.lock:  # one request at a time: the next reply is ours
            try:
                self._sock.send(json.dumps(request).encode())
            except OSError:
                self._gone = True  # worker_zygote starts a new one
                raise
            _, handle = self._reply(timeout=30)
        assert handle is not None
        return handle

    def wait_exit(self, child: ZygoteProcess, timeout: float | None) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: child.returncode is not None, timeout)

    def close(self, *, timeout: float = 15.0) -> None:
        """Close the control socket: the zygote SIGKILLs and reaps the servers still running
        and exits; killed by PID if it does not."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        self._sock.close()
        with self.lock:
            for child in self._children.values():
                child._exited(-signal.SIGKILL)
            self._children.clear()
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()

    def log_tail(self, lines: int = 40) -> str:
        return file_tail(self.log_path, lines, missing="(no zygote log)")


_worker_zygote: Zygote | None = None
_worker_lock = threading.Lock()


def worker_zygote() -> Zygote:
    """This process's zygote, started on first use (again if it died)."""
    global _worker_zygote
    with _worker_lock:
        if _worker_zygote is None or not _worker_zygote.alive():
            if _worker_zygote is not None:
                _worker_zygote.close()
            _worker_zygote = Zygote()
        return _worker_zygote


def close_worker_zygote() -> None:
    """Stop this process's zygote and its servers, if it started one."""
    global _worker_zygote
    with _worker_lock:
        if _worker_zygote is not None:
            _worker_zygote.close()
            _worker_zygote = None


# --- the zygote's side ---------------------------------------------------------------------------


class _Libc:
    def __init__(self) -> None:
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self._libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        self._libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self._libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]

    def _check(self, result: int, what: str) -> int:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")
        return result

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare")

    def mount(self, source: str, target: str, fstype: str, flags: int) -> None:
        call = self._libc.mount(source.encode(), target.encode(), fstype.encode(), flags, None)
        self._check(call, f"mount {fstype} on {target}")

    def umount2(self, target: str, flags: int) -> bool:
        return bool(self._libc.umount2(target.encode(), flags) == 0)

    def die_with_parent(self) -> None:
        self._check(self._libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl")

    def set_name(self, name: str) -> None:
        """The process's name in ps and top (its cmdline stays the zygote's)."""
        buffer = ctypes.create_string_buffer(name.encode()[:15])
        self._check(self._libc.prctl(PR_SET_NAME, ctypes.addressof(buffer)), "prctl")


def enter_netns(libc: _Libc, name: str) -> None:
    """What ``ip netns exec NAME`` does before it runs the command (iproute2, netns_switch)."""
    if os.path.exists(f"/etc/netns/{name}"):
        # ip would bind-mount its files over /etc; no test uses that, so it is not mirrored.
        raise OSError(f"/etc/netns/{name} exists: the zygote does not bind-mount it")
    enter_netns_of_thread(name)  # the only thread of the child
    libc.unshare(CLONE_NEWNS)
    libc.mount("", "/", "none", MS_SLAVE | MS_REC)  # no mount propagates back
    flags = 0
    if not libc.umount2("/sys", MNT_DETACH) and os.statvfs("/sys").f_flag & os.ST_RDONLY:
        flags = MS_RDONLY  # a read-only sysfs cannot be shadowed by a writable one
    libc.mount(name, "/sys", "sysfs", flags)


def _python_signal_defaults() -> None:
    """Signal handlers and mask as a fresh interpreter has them."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if sig == signal.SIGINT:
            handler: Any = signal.default_int_handler
        elif sig in (signal.SIGPIPE, signal.SIGXFSZ):
            handler = signal.SIG_IGN
        else:
            handler = signal.SIG_DFL
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _become_server(
    libc: _Libc, request: dict[str, Any], control: socket.socket, zygote_pid: int
) -> NoReturn:
    """In the forked child: become ``ip netns exec NS python -m app ARGS``."""
    try:
        os.setsid()
        libc.die_with_parent()
        libc.set_name(f"kernlb-{request['args'][0]}" if request["args"] else "kernlb")
        if os.getppid() != zygote_pid:
            os._exit(SETUP_FAILED)  # the zygote died before the line above
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        control.detach()  # its descriptor is closed below; the object must not close it again
        # Every other descriptor is the zygote's (its socket, its children's pidfds, the two
        # just opened): none is owned by a Python object the server could finalize.
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        enter_netns(libc, request["netns"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _python_signal_defaults()
    except BaseException:
        traceback.print_exc()
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(SETUP_FAILED)
    os._exit(_run_cli(request["args"]))


def _run_cli(args: list[str]) -> int:
    """``sys.exit(app.cli.main())`` as ``python -m app`` runs it, and the interpreter's exit
    (non-daemon threads joined, atexit handlers, streams flushed), without unwinding into the
    zygote's loop."""
    import app

    sys.argv = [str(Path(app.__file__).parent / "__main__.py"), *args]
    gc.enable()
    code: Any
    try:
        from app.cli import main

        code = main(args)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(BaseException):
        import atexit

        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    if code == -signal.SIGINT:  # an uncaught KeyboardInterrupt: die of SIGINT, as Python does
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return int(code) & 0xFF


def _preload() -> None:
    """Every module `kernlb serve` imports, imported with the collector paused (as the real
    command does), then frozen: the children never scan them."""
    gc.disable()
    import concurrent.futures.thread  # noqa: F401
    import sqlite3  # noqa: F401

    # What a start imports on its way (a new database is migrated with Alembic; uvicorn's
    # config loads its loop, protocol and lifespan modules): inert modules, nothing created.
    import alembic.command
    import alembic.config
    import alembic.runtime.migration
    import alembic.script  # noqa: F401
    import nftables  # noqa: F401  (the binding's module only: no context, no library loaded)
    import uvicorn
    import uvicorn.lifespan.on
    import uvicorn.loops.asyncio
    import uvicorn.loops.auto
    import uvicorn.protocols.http.auto
    import uvicorn.protocols.websockets.auto  # noqa: F401

    import app.cli  # noqa: F401
    from app.api.transport import QuietServer, protocol_with_header_timeout  # noqa: F401
    from app.cluster.schema import StartupError  # noqa: F401
    from app.main import create_app  # noqa: F401
    from app.net.sysctl import disable_tcp_loose, enable_forwarding  # noqa: F401
    from app.settings import Settings  # noqa: F401
    from app.tls import ensure_self_signed  # noqa: F401

    gc.freeze()
    gc.enable()


def _send(control: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    with contextlib.suppress(OSError):  # the worker is gone: its EOF ends the loop
        socket.send_fds(control, [json.dumps(message).encode()], list(fds))


def _fork(
    libc: _Libc, request: dict[str, Any], control: socket.socket, zygote_pid: int
) -> tuple[int, int]:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered may be written twice
    pid = os.fork()
    if pid == 0:
        try:
            _become_server(libc, request, control, zygote_pid)
        finally:
            os._exit(SETUP_FAILED)
    return pid, os.pidfd_open(pid)


def zygote_main(control_fd: int) -> int:
    libc = _Libc()
    # The worker's own network namespace (its main thread's), even if a thread of it that had
    # entered a test's namespace started us: a namespace must not outlive its test in us.
    worker_netns = os.open(f"/proc/{os.getppid()}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pyroute2_netns.setns(worker_netns, flags=0)
    finally:
        os.close(worker_netns)
    _preload()
    problems = []
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:
        problems.append(f"{len(threads)} threads after the imports")
    fds = {int(fd) for fd in os.listdir("/proc/self/fd")} - {0, 1, 2, control_fd}
    fds = {fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")}  # listdir's own
    if fds:
        problems.append(f"descriptors {sorted(fds)} open after the imports")
    control = socket.socket(fileno=control_fd)
    if problems:
        _send(control, {"error": "; ".join(problems)})
        return 1
    zygote_pid = os.getpid()
    children: dict[int, int] = {}  # pidfd -> pid
    _send(control, {"ready": zygote_pid})
    while True:
        readable, _, _ = select.select([control.fileno(), *children], [], [])
        for fd in readable:
            if fd != control.fileno():
                pid = children.pop(fd)
                _, status = os.waitpid(pid, 0)
                os.close(fd)
                _send(control, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})
                continue
            data = control.recv(1 << 20)
            if not data:  # the worker closed us, or died
                for pidfd, pid in children.items():
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    _, status = os.waitpid(pid, 0)
                    _send(control, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})
                return 0
            request = json.loads(data)
            try:
                pid, pidfd = _fork(libc, request, control, zygote_pid)
            except OSError as exc:
                _send(control, {"error": f"fork: {exc}"})
                continue
            children[pidfd] = pid
            args = ["ip", "netns", "exec", request["netns"], "(zygote)", *request["args"]]
            _send(control, {"spawned": pid, "args": args}, [pidfd])


if __name__ == "__main__":
    sys.exit(zygote_main(int(sys.argv[1])))
