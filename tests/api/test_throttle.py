"""Throttling of failed authentication: per source, 429 + Retry-After + envelope, the key not
compared while throttled, logged without the key, counted in /metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.api.throttle import AuthThrottle
from app.settings import Settings

from .builders import KEY, TestClient, url
from .fakes import fake_app
from .test_metrics import parse, value

WRONG = "WrongKeyWrongKey"


def make_app(tmp_path: Path) -> object:
    settings = Settings(
        db=f"sqlite:///{tmp_path}/k.db",
        state_dir=tmp_path,
        zapi_key=KEY,
        resync_interval=0,
        load_interval=0,
        auth_failures=3,
        auth_window=60,
    )
    return fake_app(settings)


def test_a_source_that_keeps_failing_gets_429(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path)
    attacker = TestClient(app, client=("198.18.1.66", 40000))
    other = TestClient(app, client=("198.18.1.7", 40000))
    with attacker, other:
        compared: list[str | None] = []
        keys = app.state.keys  # type: ignore[attr-defined]
        real_verify = keys.verify

        def counting(presented: str | None) -> bool:
            compared.append(presented)
            return bool(real_verify(presented))

        keys.verify = counting
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                response = attacker.get(url("/farms"), headers={"ZAPI_KEY": WRONG})
                assert response.status_code == 401
        assert len(compared) == 3
        for key in (WRONG, KEY):  # throttled: even the right key is not compared
            response = attacker.get(url("/farms"), headers={"ZAPI_KEY": key})
            assert response.status_code == 429
            assert response.headers["content-type"] == "application/json"
            retry = int(response.headers["retry-after"])
            assert 1 <= retry <= 60
            assert response.json() == {
                "description": "GET /farms",
                "error": "true",
                "message": (
                    f"Too many failed authentications from this address; retry in {retry} seconds."
                ),
            }
        assert len(compared) == 3
        # Another address with the right key is unaffected.
        assert other.get(url("/farms"), headers={"ZAPI_KEY": KEY}).status_code == 200
        failures = [r for r in caplog.records if "authentication failed" in r.getMessage()]
        assert len(failures) == 3
        assert "198.18.1.66" in failures[0].getMessage()
        assert "/zapi/v3.1/zapi.cgi/farms" in failures[0].getMessage()
        assert WRONG not in caplog.text and KEY not in caplog.text
        samples = parse(other.get("/metrics", headers={"ZAPI_KEY": KEY}).text)
        assert value(samples, "kernlb_auth_failures_total") == 3.0
        assert value(samples, "kernlb_auth_throttled_total") == 2.0


def test_the_window_slides() -> None:
    now = [1000.0]
    throttle = AuthThrottle(failures=2, window=10, clock=lambda: now[0])
    throttle.failed("a")
    now[0] += 4
    throttle.failed("a")
    assert throttle.retry_after("a") == 6
    assert throttle.retry_after("b") is None
    now[0] += 6
    assert throttle.retry_after("a") is None  # the first failure left the window
    throttle.failed("a")
    assert throttle.retry_after("a") == 4


def test_tracked_sources_are_bounded() -> None:
    throttle = AuthThrottle(failures=1, window=60, max_sources=100)
    for i in range(1000):
        throttle.failed(f"198.18.{i // 256}.{i % 256}")
    assert throttle.retry_after("198.18.3.231") == 60
    assert throttle.retry_after("198.18.0.0") is None  # forgotten: the oldest went first
    assert len(throttle._recent) == 100


def test_keys_set_through_the_api_need_16_characters(client: TestClient) -> None:
    response = client.post(url("/system/users/zapi"), json={"key": "NewKey42"})
    assert response.status_code == 400
    assert response.json() == {
        "description": "Setting Zapi user configuration",
        "error": "true",
        "message": "The key must have at least 16 characters.",
    }
    assert client.get(url("/farms")).status_code == 200  # the old key still works
