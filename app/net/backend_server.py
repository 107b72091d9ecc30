"""Backend of the traffic tests and `kernlb demo --cluster` (stdlib only; runs inside a backend
namespace).

TCP: on accept, send ``"<name> <peer_ip> <peer_port> <local_port>\\n"``, then echo every line
received until the peer closes. UDP: answer each datagram with the same kind of line.
Every port is served on IPv4 and, unless ``--no-ipv6``, on IPv6 (separate IPV6_V6ONLY sockets,
so IPv4 peers keep their plain dotted address in the hello line).
Prints ``ready`` on stdout once every socket listens.

    python3 app/net/backend_server.py --name b1 --tcp 80,443,8080 --udp 53
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import signal
import socket
import sys
from dataclasses import dataclass


@dataclass
class _Conn:
    sock: socket.socket
    inbuf: bytes = b""
    outbuf: bytes = b""
    closing: bool = False


def _ports(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def _bound(family: socket.AddressFamily, kind: socket.SocketKind, port: int) -> socket.socket:
    """A non-blocking socket bound to every address of ``family`` on ``port``."""
    s = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


class BackendServer:
    def __init__(
        self, name: str, *, tcp_ports: list[int], udp_ports: list[int], ipv6: bool = True
    ) -> None:
        self.name = name
        self.sel = selectors.DefaultSelector()
        self.listeners: dict[socket.socket, int] = {}
        self.udp: dict[socket.socket, int] = {}
        self.conns: dict[socket.socket, _Conn] = {}
        families = [socket.AF_INET, socket.AF_INET6] if ipv6 else [socket.AF_INET]
        for family in families:
            for port in tcp_ports:
                s = _bound(family, socket.SOCK_STREAM, port)
                s.listen(4096)
                self.listeners[s] = port
                self.sel.register(s, selectors.EVENT_READ, "accept")
            for port in udp_ports:
                u = _bound(family, socket.SOCK_DGRAM, port)
                self.udp[u] = port
                self.sel.register(u, selectors.EVENT_READ, "udp")

    def hello(self, peer_ip: str, peer_port: int, local_port: int) -> bytes:
        return f"{self.name} {peer_ip} {peer_port} {local_port}\n".encode()

    def serve_forever(self) -> None:
        while True:
            for key, events in self.sel.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if key.data == "accept":
                        self._accept(sock)
                    elif key.data == "udp":
                        self._udp(sock)
                    else:
                        self._service(sock, events)
                except OSError:
                    if sock in self.conns:
                        self._close(sock)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(256):
            try:
                sock, addr = listener.accept()
            except BlockingIOError:
                return
            peer_ip, peer_port = addr[0], addr[1]  # IPv6 addresses are 4-tuples
            sock.setblocking(False)
            conn = _Conn(sock, outbuf=self.hello(peer_ip, peer_port, self.listeners[listener]))
            self.conns[sock] = conn
            self.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, "conn")

    def _udp(self, sock: socket.socket) -> None:
        for _ in range(256):
            try:
                _data, addr = sock.recvfrom(2048)
            except BlockingIOError:
                return
            sock.sendto(self.hello(addr[0], addr[1], self.udp[sock]), addr)

    def _service(self, sock: socket.socket, events: int) -> None:
        conn = self.conns[sock]
        if events & selectors.EVENT_READ:
            data = sock.recv(65536)
            if not data:
                conn.closing = True
            else:
                conn.inbuf += data
                *lines, conn.inbuf = conn.inbuf.split(b"\n")
                for line in lines:
                    conn.outbuf += line + b"\n"
        if conn.outbuf:
            try:
                sent = sock.send(conn.outbuf)
            except BlockingIOError:
                sent = 0
            conn.outbuf = conn.outbuf[sent:]
        if conn.closing and not conn.outbuf:
            self._close(sock)
            return
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self.sel.modify(sock, mask, "conn")

    def _close(self, sock: socket.socket) -> None:
        self.conns.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--tcp", default="", help="comma-separated TCP ports")
    parser.add_argument("--udp", default="", help="comma-separated UDP ports")
    parser.add_argument(
        "--ipv6", action=argparse.BooleanOptionalAction, default=True, help="also serve IPv6"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = BackendServer(
        args.name, tcp_ports=_ports(args.tcp), udp_ports=_ports(args.udp), ipv6=args.ipv6
    )
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
