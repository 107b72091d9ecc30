"""One call = one transaction = one atomic batch: a batch the kernel refuses leaves database and
kernel as they were, and the client gets a 400 that says why (zapi31.md §1 "Behaviour the
original got wrong"); a crash is a JSON 500 without a traceback (§1 "Every response")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter

from .builders import (
    BOTH_DATABASES,
    Serve,
    TestClient,
    add_backend,
    create_farm,
    error,
    farm_body,
    snapshot,
    url,
)

pytestmark = pytest.mark.parametrize("database", BOTH_DATABASES, indirect=True)

KERNEL_SAYS = "Error: Could not process rule: No buffer space available"
REJECTED = f"The kernel rejected the change: {KERNEL_SAYS}"

# (method, path, body, the endpoint's error description)
CHANGES = [
    ("POST", "/farms", farm_body(name="new", vport=81), "Creating farm 'new'"),
    ("PUT", "/farms/web", {"vport": 81, "algorithm": "roundrobin"}, "Modify L4xNAT farm 'web'"),
    ("DELETE", "/farms/web", None, "Delete farm web"),
    ("PUT", "/farms/web/actions", {"action": "stop"}, "Farm actions"),
    ("POST", "/farms/web/backends", {"ip": "192.0.2.3", "port": 80}, "New farm backend"),
    ("PUT", "/farms/web/backends/0", {"weight": 5, "port": 81}, "Modify backend"),
    ("DELETE", "/farms/web/backends/0", None, "Delete backend"),
    (
        "PUT",
        "/farms/web/backends/0/maintenance",
        {"action": "maintenance", "mode": "cut"},
        "Set backend status",
    ),
]
CHANGE_IDS = [f"{method} {path}" for method, path, _, _ in CHANGES]


def setup_farm(client: TestClient) -> None:
    create_farm(client)
    add_backend(client, ip="192.0.2.1")
    add_backend(client, ip="192.0.2.2")


@pytest.mark.parametrize(("method", "path", "body", "description"), CHANGES, ids=CHANGE_IDS)
def test_a_rejected_batch_changes_nothing(
    client: TestClient,
    nft: FakeNftAdapter,
    ct: NullConntrack,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    description: str,
) -> None:
    setup_farm(client)
    before = snapshot(client)
    state, summary, batches = copy.deepcopy(nft.state), nft.summary(), len(nft.batches)

    nft.fail_next(KERNEL_SAYS)
    response = client.request(method, url(path), json=body)

    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"description", "error", "message"}
    assert (answer["error"], answer["message"]) == ("true", REJECTED)
    assert snapshot(client) == before
    assert nft.state == state
    assert nft.summary() == summary
    assert len(nft.batches) == batches
    assert ct.flushed == []  # connections are only cut once the change is committed

    # Database and kernel still agree: the same call now goes through.
    retry = client.request(method, url(path), json=body)
    assert retry.status_code in (200, 201), retry.text
    assert len(nft.batches) == batches + 1


@pytest.mark.parametrize(("method", "path", "body", "description"), CHANGES, ids=CHANGE_IDS)
def test_a_rejected_batch_is_reported_by_the_endpoint(
    client: TestClient,
    nft: FakeNftAdapter,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    description: str,
) -> None:
    setup_farm(client)
    nft.fail_next(KERNEL_SAYS)
    response = client.request(method, url(path), json=body)
    assert (response.status_code, response.json()) == (400, error(description, REJECTED))


class CrashingNft(FakeNftAdapter):
    """A kernel adapter with a bug: its next non-empty batch raises something unexpected."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_next = False

    def apply(self, commands: list[dict[str, Any]]) -> None:
        if self.crash_next and commands:
            self.crash_next = False
            raise RuntimeError("adapter bug: secret internal detail")
        super().apply(commands)


def test_an_internal_failure_is_a_json_500_and_changes_nothing(serve: Serve) -> None:
    nft = CrashingNft()
    with serve(nft=nft) as client:
        setup_farm(client)
        before = snapshot(client)
        state = copy.deepcopy(nft.state)
        nft.crash_next = True
        response = client.post(url("/farms"), json=farm_body(name="new", vport=81))
        assert (response.status_code, response.json()) == (
            500,
            error("POST /farms", "Internal server error; the details are in the server log."),
        )
        assert "secret" not in response.text
        assert snapshot(client) == before
        assert nft.state == state
        response = client.post(url("/farms"), json=farm_body(name="new", vport=81))
        assert response.status_code == 201
