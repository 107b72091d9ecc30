"""A small HTTP(S) server for the farmguardian tests (stdlib only; runs in a backend namespace).

    /            200 "hello from <name>"
    /missing     404
    /error       500
    /redirect    302 to /
    /vhost       200 when the Host header is www.example.com[:port], else 404

Every answer carries `X-Backend: <name>`.

Prints ``ready`` once listening.

    python3 http_server.py --name b1 --port 7000 [--tls-port 7443 --cert C --key K]
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                # In this connection's thread: a client that never completes a handshake
                # must not block the accepting thread.
                self.request.settimeout(self.timeout)
                self.request.do_handshake()
            super().setup()

        def do_GET(self) -> None:
            host = (self.headers.get("Host") or "").split(":")[0]
            if self.path == "/":
                self.answer(200, f"hello from {name}\n")
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("X-Backend", name)
                self.send_header("Location", "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/vhost" and host == "www.example.com":
                self.answer(200, "virtual host\n")
            elif self.path == "/error":
                self.answer(500, "broken\n")
            else:
                self.answer(404, "not here\n")

        def answer(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("X-Backend", name)  # who answered, whatever the path (http farms)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ThreadingHTTPServer.request_queue_size = 128  # load tests: no SYN dropped by a full backlog
    servers = [ThreadingHTTPServer(("0.0.0.0", args.port), handler(args.name))]
    if args.tls_port:
        tls = ThreadingHTTPServer(("0.0.0.0", args.tls_port), handler(args.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        tls.socket = context.wrap_socket(
            tls.socket, server_side=True, do_handshake_on_connect=False
        )
        servers.append(tls)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()  # until SIGTERM
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
