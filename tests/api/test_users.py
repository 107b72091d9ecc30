"""GET /system/users, GET/POST /system/users/zapi: key status and rotation (reference §1.3,
zapi31.md §1 "never echo the stored key back in clear unless just generated")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import KEY, Serve, TestClient, error, expect, url

SET = "Setting Zapi user configuration"
CHANGED = "Settings was changed successfully."
UNAUTHORIZED = {"message": "Authorization required"}
GENERATED = re.compile(r"^[a-zA-Z0-9]{40}$")


def zapi_user(*, key: str = "********", status: str = "true") -> dict[str, Any]:
    return {"description": "Zapi user configuration.", "params": {"key": key, "status": status}}


def changed(**params: Any) -> dict[str, Any]:
    return {"description": SET, "message": CHANGED, "params": params}


def users(zapi: str) -> dict[str, Any]:
    return {
        "description": "Get users",
        "params": [{"status": "true", "user": "root"}, {"status": zapi, "user": "zapi"}],
    }


def post(client: TestClient, body: dict[str, Any], *, key: str = KEY) -> Any:
    return client.post(url("/system/users/zapi"), json=body, headers={"ZAPI_KEY": key})


def test_status_never_shows_the_key(client: TestClient) -> None:
    expect(client.get(url("/system/users/zapi")), 200, zapi_user())
    expect(client.get(url("/system/users")), 200, users("true"))


def test_rotate_to_a_chosen_key(client: TestClient) -> None:
    expect(post(client, {"key": "NewKey42NewKey42"}), 200, changed(key="********"))
    # The old key stops working at once; the new one works.
    expect(client.get(url("/farms"), headers={"ZAPI_KEY": KEY}), 401, UNAUTHORIZED)
    response = client.get(url("/system/users/zapi"), headers={"ZAPI_KEY": "NewKey42NewKey42"})
    expect(response, 200, zapi_user())


def test_generate_a_key_shown_once(client: TestClient) -> None:
    response = post(client, {"randomkey": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    generated = body["params"]["key"]
    assert GENERATED.match(generated), generated
    assert body == changed(key=generated, randomkey="true")
    expect(client.get(url("/farms"), headers={"ZAPI_KEY": KEY}), 401, UNAUTHORIZED)
    response = client.get(url("/system/users/zapi"), headers={"ZAPI_KEY": generated})
    expect(response, 200, zapi_user())  # never again in clear
    assert generated not in response.text


def test_randomkey_false_changes_nothing(client: TestClient) -> None:
    expect(post(client, {"randomkey": "false"}), 200, changed(randomkey="false"))
    expect(client.get(url("/system/users/zapi")), 200, zapi_user())


def test_enable_when_enabled_keeps_the_key(client: TestClient) -> None:
    expect(post(client, {"status": "enable"}), 200, changed(status="enable"))
    expect(client.get(url("/system/users/zapi")), 200, zapi_user())


def test_disable_then_a_restart_keeps_it_disabled(
    serve: Serve, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve(nft=FakeNftAdapter()) as client:
        expect(post(client, {"status": "disable"}), 200, changed(status="disable"))
        expect(client.get(url("/farms")), 401, UNAUTHORIZED)
    # Without --key the server starts with the zapi user still disabled: no key is generated.
    keyless = settings.model_copy(update={"zapi_key": ""})
    with serve(nft=FakeNftAdapter(), settings=keyless) as client:
        expect(client.get(url("/farms")), 401, UNAUTHORIZED)
    assert "generated ZAPI key" not in capsys.readouterr().out
    # The operator's key (--key / KERNLB_ZAPI_KEY) enables it again.
    with serve(nft=FakeNftAdapter()) as client:
        expect(client.get(url("/system/users/zapi")), 200, zapi_user())


def test_enable_generates_a_key_when_none_is_set(client: TestClient) -> None:
    # Out of the API's reach once disabled (no key authenticates), but the service does it.
    keys = client.app.state.keys  # type: ignore[attr-defined]
    service = client.app.state.users  # type: ignore[attr-defined]
    keys.disable()
    change = service.change({"status": "enable"})
    generated = change.params["key"]
    assert GENERATED.match(generated)
    assert change.params == {"key": generated, "status": "enable"}
    expect(client.get(url("/system/users/zapi"), headers={"ZAPI_KEY": generated}), 200, zapi_user())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Not found any param."),
        ({"foo": 1, "bar": 2}, "Illegal params: bar, foo"),
        ({"key": "abc", "user": "x"}, "Illegal params: user"),
        ({"key": ""}, "Error, character incorrect in key zapi."),
        ({"key": "has space"}, "Error, character incorrect in key zapi."),
        ({"key": "dash-ed"}, "Error, character incorrect in key zapi."),
        ({"key": "newline\n"}, "Error, character incorrect in key zapi."),
        ({"key": 1234}, "Error, character incorrect in key zapi."),
        ({"key": None}, "Error, character incorrect in key zapi."),
        ({"status": "on"}, "Error, character incorrect in status zapi."),
        ({"status": True}, "Error, character incorrect in status zapi."),
        (
            {"newpassword": "secret"},
            "The zapi user has no password in kernlb: only its key authenticates.",
        ),
        ({"randomkey": True}, 'Invalid randomkey: it must be "true" or "false".'),
        ({"randomkey": "true", "key": "abc"}, "Send either a key or randomkey, not both."),
        (
            {"status": "disable", "key": "abc"},
            "A key cannot be set while disabling the zapi user.",
        ),
    ],
)
def test_refusals_change_nothing(client: TestClient, body: dict[str, Any], message: str) -> None:
    expect(post(client, body), 400, error(SET, message))
    expect(client.get(url("/system/users/zapi")), 200, zapi_user())


def test_the_key_is_stored_hashed(client: TestClient) -> None:
    post(client, {"key": "StoredKey1StoredKey1"})
    from app.db import repositories as repo
    from app.services.keys import KEY_SETTING

    uow = client.app.state.farms.uow  # type: ignore[attr-defined]
    with uow.read() as session:
        stored = repo.get_setting(session, KEY_SETTING)
    assert stored is not None and "StoredKey1StoredKey1" not in stored
