"""The web GUI: static files under /gui/, served by kernlb itself with a strict CSP.

The GUI is a plain client of ZAPI (it sends the key the operator typed in the ZAPI_KEY
header), so its files are public: they hold no data. They are read once at start-up from the
package (``app/gui/static``), looked up by exact name (no path from the request ever reaches
the file system) and answered with headers that forbid inline code, framing and sniffing.

It is an ASGI middleware rather than a router so that it sits in front of the ZAPI gate (the
files need no key, and their answers are HTML/JS/CSS, not ZAPI envelopes) and stays out of the
OpenAPI document.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

GUI_PREFIX = "/gui/"
STATIC_DIR = Path(__file__).resolve().parent.parent / "gui" / "static"

# No 'unsafe-inline' anywhere: every script and style is a file of ours. connect-src 'self'
# is what the GUI's fetch() calls to ZAPI need; nothing may frame the GUI (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Revalidate every time (cheap with the ETag): an upgraded kernlb never serves stale JS.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static_files(root: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every file under ``root`` by its relative POSIX path (``js/app.js``)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        content_type = CONTENT_TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[path.relative_to(root).as_posix()] = StaticFile(body, content_type, etag)
    return files


@functools.cache
def package_static_files() -> Mapping[str, StaticFile]:
    """The package's files, read once per process (every app of a process serves the same)."""
    return MappingProxyType(load_static_files())


def is_gui_path(path: str) -> bool:
    return path in ("/", "/gui", "/favicon.ico") or path.startswith(GUI_PREFIX)


class GuiMiddleware:
    """Answers ``/`` (redirect), ``/gui/...`` and ``/favicon.ico``; passes the rest on."""

    def __init__(self, app: ASGIApp, files: Mapping[str, StaticFile] | None = None) -> None:
        self.app = app
        self.files = files if files is not None else package_static_files()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_gui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        method = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("Method not allowed\n", 405)
            response.headers["Allow"] = "GET, HEAD"
        elif path in ("/", "/gui"):
            response = RedirectResponse(GUI_PREFIX, status_code=308)
        else:
            name = "favicon.svg" if path == "/favicon.ico" else path[len(GUI_PREFIX) :]
            response = self.file_response(name or "index.html", scope)
        response.headers.update(SECURITY_HEADERS)
        return response

    def file_response(self, name: str, scope: Scope) -> Response:
        static = self.files.get(name)
        if static is None:
            return PlainTextResponse("Not found\n", 404)
        headers = {"ETag": static.etag}
        if_none_match = dict(scope["headers"]).get(b"if-none-match", b"").decode("latin-1")
        if static.etag in (tag.strip() for tag in if_none_match.split(",")):
            return Response(status_code=304, headers=headers)
        body = b"" if scope["method"] == "HEAD" else static.body
        response = Response(body, media_type=static.content_type, headers=headers)
        if scope["method"] == "HEAD":
            response.headers["Content-Length"] = str(len(static.body))
        return response
