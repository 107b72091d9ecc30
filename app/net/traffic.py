"""Client-side traffic helpers; every socket is created in the client namespace's threads."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from app.net.lab import NetnsExecutor


@dataclass(frozen=True)
class Hello:
    """What a backend announced: its name and the connection as it saw it."""

    backend: str
    peer_ip: str
    peer_port: int
    local_port: int


@dataclass(frozen=True)
class Outcome:
    """One connection attempt: a hello, or the reason it failed."""

    hello: Hello | None
    error: str | None
    elapsed: float
    started: float
    source: str | None = None

    @property
    def ok(self) -> bool:
        return self.hello is not None


def parse_hello(line: bytes) -> Hello:
    parts = line.decode().split()
    if len(parts) != 4:
        raise ValueError(f"malformed hello {line!r}")
    name, peer_ip, peer_port, local_port = parts
    return Hello(name, peer_ip, int(peer_port), int(local_port))


def _readline(sock: socket.socket, *, deadline: float) -> bytes:
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no full line before deadline (got {buf!r})")
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError(f"connection closed by peer (got {buf!r})")
        buf += chunk
    return buf.split(b"\n", 1)[0]


def family_of(address: str) -> socket.AddressFamily:
    """``AF_INET`` or ``AF_INET6``, from an address literal."""
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def any_address(family: socket.AddressFamily) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


def tcp_hello(dst: str, port: int, *, source: str | None = None, timeout: float = 3.0) -> Hello:
    """Connect to dst:port (IPv4 or IPv6), return the backend's hello line, close."""
    deadline = time.monotonic() + timeout
    with socket.socket(family_of(dst), socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        if source is not None:
            sock.bind((source, 0))
        sock.connect((dst, port))
        return parse_hello(_readline(sock, deadline=deadline))


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__}({errno.errorcode.get(exc.errno, exc.errno)})"
    return f"{type(exc).__name__}({exc})"


def tcp_attempt(dst: str, port: int, *, source: str | None = None, timeout: float = 3.0) -> Outcome:
    started = time.monotonic()
    try:
        hello = tcp_hello(dst, port, source=source, timeout=timeout)
    except (OSError, EOFError, ValueError) as exc:
        return Outcome(None, describe_error(exc), time.monotonic() - started, started, source)
    return Outcome(hello, None, time.monotonic() - started, started, source)


def udp_hello(
    dst: str, port: int, *, source: str | None = None, timeout: float = 2.0
) -> tuple[Hello, tuple[str, int]]:
    """Send one datagram from a fresh socket (a new flow); return the reply and its source."""
    family = family_of(dst)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((source or any_address(family), 0))
        sock.sendto(b"hi\n", (dst, port))
        data, addr = sock.recvfrom(2048)
        return parse_hello(data.split(b"\n", 1)[0]), (addr[0], addr[1])


def udp_probe(dst: str, port: int, *, timeout: float = 1.0) -> str:
    """Send from a connected UDP socket: ``"refused"`` (ICMP unreachable), ``"timeout"`` or
    ``"reply <backend>"``. Used to show that a flow is *not* captured."""
    with socket.socket(family_of(dst), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((dst, port))
        try:
            sock.send(b"hi\n")
            data = sock.recv(2048)
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        hello = parse_hello(data.split(b"\n", 1)[0])
        return f"reply {hello.backend}"


class HeldConnection:
    """An established connection kept open to prove it still exchanges data."""

    def __init__(self, sock: socket.socket, hello: Hello) -> None:
        self.sock = sock
        self.hello = hello
        self._seq = 0

    @classmethod
    def open(
        cls, dst: str, port: int, *, source: str | None = None, timeout: float = 3.0
    ) -> HeldConnection:
        sock = socket.socket(family_of(dst), socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source is not None:
                sock.bind((source, 0))
            sock.connect((dst, port))
            hello = parse_hello(_readline(sock, deadline=time.monotonic() + timeout))
        except BaseException:
            sock.close()
            raise
        return cls(sock, hello)

    def exchange(self, *, timeout: float = 3.0) -> None:
        """Send a numbered line and require its echo; raises on reset, EOF or timeout."""
        self._seq += 1
        line = f"ping {self._seq} {self.hello.backend}".encode()
        self.sock.settimeout(timeout)
        self.sock.sendall(line + b"\n")
        echoed = _readline(self.sock, deadline=time.monotonic() + timeout)
        if echoed != line:
            raise AssertionError(f"echo mismatch: sent {line!r}, got {echoed!r}")

    def exchange_outcome(self, *, timeout: float = 3.0) -> str:
        """``"alive"``, or how the exchange failed (``ConnectionResetError(...)``, ``EOFError``)."""
        try:
            self.exchange(timeout=timeout)
        except (OSError, EOFError) as exc:
            return describe_error(exc)
        return "alive"

    def close(self) -> None:
        self.sock.close()


@dataclass
class LoadReport:
    outcomes: list[Outcome]
    events: list[tuple[float, str]]

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def slow(self) -> list[Outcome]:
        """Successful connections that took long enough to hide a retransmitted SYN."""
        return [o for o in self.outcomes if o.ok and o.elapsed > 0.9]

    def failure_window(self) -> str:
        """How many new connections failed, and over how long (first start to last end)."""
        failures = self.failures
        if not failures:
            return "none failed"
        first = min(o.started for o in failures)
        last = max(o.started + o.elapsed for o in failures)
        return f"{len(failures)} failed within {last - first:.2f} s"

    def per_backend(self) -> Counter[str]:
        return Counter(o.hello.backend for o in self.outcomes if o.hello is not None)

    def event_at(self, when: float) -> str:
        """The last event (e.g. an API edit) started before ``when``."""
        label = "(before first event)"
        for t, name in self.events:
            if t <= when:
                label = name
        return label

    def summary(self) -> str:
        fails = Counter(f"{o.error} during {self.event_at(o.started)}" for o in self.failures)
        slow = Counter(self.event_at(o.started) for o in self.slow)
        return (
            f"{self.total} connections, {len(self.failures)} failed, {len(self.slow)} slow (>0.9 s)"
            f"; per backend {dict(sorted(self.per_backend().items()))}"
            + (f"; failures: {dict(fails)}" if fails else "")
            + (f"; slow during: {dict(slow)}" if slow else "")
        )


@dataclass
class LoadGenerator:
    """Continuous new-connection load from several client threads, bounded in count and time."""

    client: Client
    dst: str
    port: int
    sources: Sequence[str]
    max_connections: int = 3000
    max_seconds: float = 90.0
    pause: float = 0.005
    timeout: float = 5.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _outcomes: list[Outcome] = field(default_factory=list)
    _events: list[tuple[float, str]] = field(default_factory=list)
    _futures: list[Future[None]] = field(default_factory=list)

    def _worker(self, source: str) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self._outcomes) >= self.max_connections:
                    return
            outcome = tcp_attempt(self.dst, self.port, source=source, timeout=self.timeout)
            with self._lock:
                self._outcomes.append(outcome)
            self._stop.wait(self.pause)

    def start(self) -> LoadGenerator:
        self._futures = [self.client.executor.submit(self._worker, s) for s in self.sources]
        return self

    def event(self, label: str) -> None:
        """Record that something (an edit) starts now, to attribute failures."""
        with self._lock:
            self._events.append((time.monotonic(), label))

    def count(self) -> int:
        with self._lock:
            return len(self._outcomes)

    def wait_for(self, n: int, *, timeout: float = 30.0) -> None:
        """Block until at least ``n`` more connections were attempted."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"load stalled at {self.count()} connections (cap {self.max_connections}, "
                    f"{self.max_seconds}s per worker)"
                )
            time.sleep(0.01)

    def stop(self) -> LoadReport:
        self._stop.set()
        for fut in self._futures:
            fut.result(timeout=self.max_seconds + self.timeout + 10)
        with self._lock:
            return LoadReport(list(self._outcomes), list(self._events))

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


class Client:
    """Traffic from the client namespace."""

    def __init__(self, executor: NetnsExecutor) -> None:
        self.executor = executor

    def hello(self, dst: str, port: int, *, source: str | None = None) -> Hello:
        return self.executor.run(tcp_hello, dst, port, source=source)

    def attempt(
        self, dst: str, port: int, *, source: str | None = None, timeout: float = 3.0
    ) -> Outcome:
        return self.executor.run(tcp_attempt, dst, port, source=source, timeout=timeout)

    def sequence(self, dst: str, port: int, n: int, *, source: str | None = None) -> list[Hello]:
        """``n`` connections one after another (order matters, e.g. round robin)."""

        def run() -> list[Hello]:
            return [tcp_hello(dst, port, source=source) for _ in range(n)]

        return self.executor.run(run)

    def many(
        self,
        dst: str,
        port: int,
        n: int,
        *,
        sources: Sequence[str] | None = None,
        concurrency: int = 4,
    ) -> list[Outcome]:
        """``n`` connections from ``concurrency`` threads, cycling through ``sources``."""
        srcs: Sequence[str | None] = list(sources) if sources else [None]

        def chunk(indices: Iterable[int]) -> Callable[[], list[Outcome]]:
            idx = list(indices)
            return lambda: [tcp_attempt(dst, port, source=srcs[i % len(srcs)]) for i in idx]

        parts = [chunk(range(k, n, concurrency)) for k in range(concurrency)]
        results = self.executor.map_all(parts, timeout=60 + n * 0.5)
        return [o for part in results for o in part]

    def backends_of(
        self,
        dst: str,
        port: int,
        n: int,
        *,
        sources: Sequence[str] | None = None,
        concurrency: int = 4,
    ) -> Counter[str]:
        """Connect ``n`` times; require every connection to succeed; count per backend."""
        outcomes = self.many(dst, port, n, sources=sources, concurrency=concurrency)
        failed = [o.error for o in outcomes if not o.ok]
        assert not failed, f"{len(failed)}/{n} to {dst}:{port} failed: {Counter(failed)}"
        return Counter(o.hello.backend for o in outcomes if o.hello is not None)

    def refused(self, dst: str, port: int, *, tries: int = 3) -> bool:
        """True if every try is refused: nothing captured the flow, the LB itself answered."""
        outcomes = [self.attempt(dst, port, timeout=2.0) for _ in range(tries)]
        return all(o.error is not None and "ECONNREFUSED" in o.error for o in outcomes)

    def udp_probe(self, dst: str, port: int) -> str:
        return self.executor.run(udp_probe, dst, port)

    def udp(
        self, dst: str, port: int, *, source: str | None = None, timeout: float = 2.0
    ) -> tuple[Hello, tuple[str, int]]:
        return self.executor.run(udp_hello, dst, port, source=source, timeout=timeout)

    def hold(
        self,
        dst: str,
        port: int,
        *,
        backend: str | None = None,
        source: str | None = None,
        attempts: int = 60,
    ) -> HeldConnection:
        """Open a held connection, retrying (bounded) until it lands on ``backend`` if given."""
        for _ in range(attempts):
            conn = self.executor.run(HeldConnection.open, dst, port, source=source)
            if backend is None or conn.hello.backend == backend:
                return conn
            conn.close()
        raise AssertionError(f"no connection to {dst}:{port} reached {backend} in {attempts} tries")

    def load(
        self,
        dst: str,
        port: int,
        *,
        sources: Sequence[str],
        max_connections: int = 3000,
        max_seconds: float = 90.0,
        pause: float = 0.005,
    ) -> LoadGenerator:
        return LoadGenerator(
            self,
            dst,
            port,
            sources,
            max_connections=max_connections,
            max_seconds=max_seconds,
            pause=pause,
        )
