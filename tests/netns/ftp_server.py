"""A small FTP server for the helper tests (stdlib only; runs inside a backend namespace).

Enough of RFC 959/2428 for ``ftplib``: USER, PASS, SYST, PWD, TYPE, FEAT, NOOP, PASV, EPSV,
PORT, EPRT, LIST, NLST, RETR, QUIT. Anonymous: any user and password are accepted.

What it saw is put in its replies, so that a test can tell what the load balancer did:

- the greeting: ``220 <name> <peer_ip> <peer_port> <local_port>`` (the control connection as
  seen here);
- PASV / EPSV: the address and port it listens on (its own address: a helper must rewrite it);
- PORT / EPRT: ``200 PORT <ip> <port>``, the address it was told to connect to;
- ``RETR whoami``: one line ``<name> <data_peer_ip> <data_peer_port> <data_local_port>``, the
  data connection as seen here (like backend_server.py's hello).

Prints ``ready`` on stdout once it listens on ``--ports`` (default 21), on IPv4 and IPv6.

    python3 ftp_server.py --name b1 --ports 21,2121
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable

DATA_TIMEOUT = 4.0
IDLE_TIMEOUT = 30.0


class Session:
    """One control connection, served by one thread."""

    def __init__(self, name: str, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.name = name
        self.sock = sock
        self.peer = peer
        self.family = sock.family
        self.local_ip: str = sock.getsockname()[0]
        self.local_port: int = sock.getsockname()[1]
        self.passive: socket.socket | None = None
        self.active: tuple[str, int] | None = None
        self.reader = sock.makefile("rb")

    def reply(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def serve(self) -> None:
        self.sock.settimeout(IDLE_TIMEOUT)
        self.reply(f"220 {self.name} {self.peer[0]} {self.peer[1]} {self.local_port}")
        handlers: dict[str, Callable[[str], bool | None]] = {
            "USER": lambda _: self.reply("331 Any password will do."),
            "PASS": lambda _: self.reply("230 Logged in."),
            "SYST": lambda _: self.reply("215 UNIX Type: L8"),
            "PWD": lambda _: self.reply('257 "/" is the current directory.'),
            "CWD": lambda _: self.reply("250 OK."),
            "TYPE": lambda _: self.reply("200 Type set."),
            "NOOP": lambda _: self.reply("200 OK."),
            "FEAT": lambda _: self.reply("211 No features."),
            "PASV": self.pasv,
            "EPSV": self.epsv,
            "PORT": self.port,
            "EPRT": self.eprt,
            "LIST": self.listing,
            "NLST": self.listing,
            "RETR": self.retr,
        }
        try:
            for raw in self.reader:
                line = raw.decode(errors="replace").strip()
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    self.reply("221 Bye.")
                    return
                handler = handlers.get(verb)
                if handler is None:
                    self.reply(f"502 {verb} not implemented.")
                else:
                    handler(arg)
        except OSError:
            return
        finally:
            self.close_data()
            self.reader.close()
            self.sock.close()

    # -- data connection setup ---------------------------------------------------------------

    def close_data(self) -> None:
        if self.passive is not None:
            self.passive.close()
        self.passive = None
        self.active = None

    def _listen(self) -> int:
        self.close_data()
        listener = socket.socket(self.family, socket.SOCK_STREAM)
        listener.bind((self.local_ip, 0))
        listener.listen(1)
        listener.settimeout(DATA_TIMEOUT)
        self.passive = listener
        port: int = listener.getsockname()[1]
        return port

    def pasv(self, _: str) -> None:
        if self.family != socket.AF_INET:
            self.reply("522 Use EPSV on IPv6.")
            return
        port = self._listen()
        h = self.local_ip.replace(".", ",")
        self.reply(f"227 Entering Passive Mode ({h},{port >> 8},{port & 0xFF}).")

    def epsv(self, _: str) -> None:
        port = self._listen()
        self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")

    def port(self, arg: str) -> None:
        try:
            parts = [int(p) for p in arg.split(",")]
            if len(parts) != 6 or not all(0 <= p <= 255 for p in parts):
                raise ValueError(arg)
        except ValueError:
            self.reply("501 Bad PORT.")
            return
        self.close_data()
        ip = ".".join(str(p) for p in parts[:4])
        self.active = (ip, parts[4] * 256 + parts[5])
        self.reply(f"200 PORT {ip} {self.active[1]}")

    def eprt(self, arg: str) -> None:
        fields = arg.split(arg[:1]) if arg else []
        if len(fields) != 5 or fields[1] not in ("1", "2") or not fields[3].isdigit():
            self.reply("501 Bad EPRT.")
            return
        self.close_data()
        self.active = (fields[2], int(fields[3]))
        self.reply(f"200 EPRT {fields[2]} {fields[3]}")

    def _data_connection(self) -> socket.socket | None:
        try:
            if self.passive is not None:
                conn, _ = self.passive.accept()
                return conn
            if self.active is not None:
                return socket.create_connection(self.active, timeout=DATA_TIMEOUT)
        except OSError as exc:
            self.reply(f"425 Can't open data connection: {exc}.")
            return None
        finally:
            self.close_data()
        self.reply("425 Use PORT or PASV first.")
        return None

    def _send(self, payload: Callable[[socket.socket], bytes]) -> None:
        conn = self._data_connection()
        if conn is None:
            return
        with conn:
            self.reply("150 Opening data connection.")
            try:
                conn.settimeout(DATA_TIMEOUT)
                conn.sendall(payload(conn))
            except OSError as exc:
                self.reply(f"426 Transfer aborted: {exc}.")
                return
        self.reply("226 Transfer complete.")

    def listing(self, _: str) -> None:
        self._send(lambda _conn: b"-rw-r--r-- 1 ftp ftp 64 Jan 1 00:00 whoami\r\n")

    def retr(self, arg: str) -> None:
        if arg.strip() != "whoami":
            self.reply("550 No such file.")
            return

        def whoami(conn: socket.socket) -> bytes:
            peer = conn.getpeername()
            local_port = conn.getsockname()[1]
            return f"{self.name} {peer[0]} {peer[1]} {local_port}\n".encode()

        self._send(whoami)


def _listener(family: socket.AddressFamily, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    sock.listen(128)
    return sock


def _accept_loop(name: str, listener: socket.socket) -> None:
    while True:
        sock, addr = listener.accept()
        session = Session(name, sock, (addr[0], addr[1]))
        threading.Thread(target=session.serve, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--ports", default="21", help="comma-separated TCP ports")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ports = [int(p) for p in args.ports.split(",") if p.strip()]
    listeners = [
        _listener(family, port) for port in ports for family in (socket.AF_INET, socket.AF_INET6)
    ]
    for listener in listeners:
        threading.Thread(target=_accept_loop, args=(args.name, listener), daemon=True).start()
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
