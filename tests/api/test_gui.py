"""The web GUI's files: where they are served, with which headers, and what they may contain."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.api.gui import CONTENT_SECURITY_POLICY, STATIC_DIR, load_static_files
from app.nft.fake import FakeNftAdapter

from .builders import KEY, Serve, TestClient, url

JS_FILES = sorted(STATIC_DIR.rglob("*.js"))


@pytest.fixture
def browser(serve: Serve, nft: FakeNftAdapter) -> Iterator[TestClient]:
    """A client without a key and without the ZAPI-envelope checks (these answers are files)."""
    with serve(nft=nft, key=None) as client:
        client.event_hooks["response"] = []
        yield client


def test_root_leads_to_the_gui(browser: TestClient) -> None:
    for path in ("/", "/gui"):
        response = browser.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (308, "/gui/")
    page = browser.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/gui/js/main.js"></script>' in page.text


def test_every_gui_answer_carries_the_security_headers(browser: TestClient) -> None:
    for path in ("/gui/", "/gui/js/main.js", "/gui/app.css", "/favicon.ico", "/gui/nope", "/"):
        response = browser.get(path, follow_redirects=False)
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "no-referrer", path
    policy = dict(
        part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";") if part.strip()
    )
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/gui/js/main.js", "text/javascript; charset=utf-8"),
        ("/gui/js/pages/farm.js", "text/javascript; charset=utf-8"),
        ("/gui/app.css", "text/css; charset=utf-8"),
        ("/favicon.ico", "image/svg+xml"),
    ],
)
def test_static_files_are_served_without_a_key(
    browser: TestClient, path: str, content_type: str
) -> None:
    response = browser.get(path)
    assert (response.status_code, response.headers["content-type"]) == (200, content_type)
    assert response.headers["cache-control"] == "no-cache"


def test_an_unchanged_file_is_a_304(browser: TestClient) -> None:
    first = browser.get("/gui/js/api.js")
    again = browser.get("/gui/js/api.js", headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/gui/nope.js",
        "/gui/%2e%2e/api/gui.py",  # decoded to "/gui/../api/gui.py" after the client
        "/gui/js/%2e%2e/%2e%2e/main.py",
        "/gui//etc/passwd",
        "/gui/js/",
    ],
)
def test_only_the_packaged_files_exist(browser: TestClient, path: str) -> None:
    response = browser.get(path)
    assert response.status_code == 404
    assert response.text == "Not found\n"


def test_the_gui_is_read_only(browser: TestClient) -> None:
    response = browser.post("/gui/", content=b"x")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")
    head = browser.head("/gui/js/main.js")
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) == len(browser.get("/gui/js/main.js").content)


def test_zapi_still_needs_the_key(browser: TestClient) -> None:
    response = browser.get(url("/farms"))
    assert (response.status_code, response.json()) == (401, {"message": "Authorization required"})
    assert browser.get(url("/farms"), headers={"ZAPI_KEY": KEY}).status_code == 200


def test_the_openapi_document_is_unchanged_by_the_gui(browser: TestClient) -> None:
    paths = browser.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/gui") or p == "/"]


# -- what the files may contain (the CSP enforces it in the browser; this says where) -------


def test_html_has_no_inline_script_style_or_handler() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/gui/js/main.js">']
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_scripts_never_parse_strings_as_html_or_code(path: Path) -> None:
    """Text reaches the page through textContent only, so data holding markup stays text."""
    source = path.read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setAttribute('style'",
        "localStorage.setItem",
        "document.cookie",
    ):
        assert sink not in source, f"{path.name} uses {sink}"


def test_the_key_is_kept_in_session_storage_only() -> None:
    api = (STATIC_DIR / "js" / "api.js").read_text()
    assert "sessionStorage.setItem(KEY_SLOT, key)" in api
    assert "headers = { ZAPI_KEY:" in api.replace("\n", " ")
    for path in JS_FILES:
        source = path.read_text()
        assert "console.log" not in source, path.name
        assert not re.search(r"[?&]key=|zapi_key=", source, re.IGNORECASE), path.name


def test_the_package_holds_every_file_the_html_names() -> None:
    files = load_static_files()
    html = files["index.html"].body.decode()
    for ref in re.findall(r'(?:src|href)="/gui/([^"]+)"', html):
        assert ref in files, ref
    for path in JS_FILES:
        for module in re.findall(r"from '(\.[^']+)'", path.read_text()):
            target = (path.parent / module).resolve().relative_to(STATIC_DIR.resolve())
            assert target.as_posix() in files, f"{path.name} imports {module}"
