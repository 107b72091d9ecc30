"""Property test: every operation of openapi/openapi.json, called with inputs generated from
the document (schemathesis), must never answer 5xx and must answer what the document says
(documented status, content type, body schema).

One app for the whole module (state accumulates across calls, as on a real server), a fake
kernel, fake links and a fake conntrack counter: nothing touches the host.  Bounded: a few
examples per operation, derandomized so CI runs are reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

from app.net.addresses import StaticAddressBook
from app.settings import Settings

from .builders import INTERFACES, KEY, TestClient
from .deferred_operations import defer_operation_tests
from .fakes import FakeCounter, fake_app, host_links

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 10

# slow: 112 operations in one module, 40-60 s on one worker (the last module to end when it
# was handed out among the short API modules); under xdist it starts first (tests/conftest.py).
pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("props")
    app_settings = Settings(
        db=f"sqlite:///{tmp}/k.db",
        state_dir=tmp,
        zapi_key=KEY,
        resync_interval=0,
        load_interval=0,
    )
    links = host_links()
    addresses = StaticAddressBook(INTERFACES)
    counter = FakeCounter()
    app = fake_app(app_settings, addresses=addresses, counter=counter, links=links)
    with TestClient(app, raise_server_exceptions=False) as client:
        # Something to find: a farm with backends, so that generated names sometimes hit.
        body = {"farmname": "web", "profile": "l4xnat", "vip": "198.18.0.10", "vport": 80}
        assert (
            client.post(
                "/zapi/v3.1/zapi.cgi/farms", json=body, headers={"ZAPI_KEY": KEY}
            ).status_code
            == 201
        )
        yield client


# Each operation's Hypothesis test (its examples and coverage cases) is built when its item is
# set up, not at collection: the workers that do not run this module skip ~1.7 s of CPU each.
@defer_operation_tests
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any, app_client: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    # Authenticate every call: a generated key would only ever get the 401.
    kwargs["headers"] = {**kwargs.get("headers", {}), "ZAPI_KEY": KEY}
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")  # raw bodies: httpx spells it `content`
    response = app_client.request(**kwargs)
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        if case.operation.label.endswith("/system/users/zapi") and case.method == "POST":
            # A generated body may rotate or disable the key: put the test key back.
            app_client.app.state.keys.set(KEY)  # type: ignore[attr-defined]
