"""Authentication, routing, content types and request bodies (zapi31.md §1, reference §1.2-1.5,
§3.1, checklist "Transport and auth" and "Every response")."""

from __future__ import annotations

import pytest

from .builders import (
    BASE_V3,
    KEY,
    TestClient,
    create_farm,
    error,
    expect,
    farm_body,
    farm_detail,
    get_farm,
    url,
)

UNAUTHORIZED = {"message": "Authorization required"}
UNSUPPORTED = {"error": "true", "message": "Content-Type not supported"}


def not_found(path: str) -> dict[str, str]:
    return error("Request not found", f"Request not found: {path}")


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"ZAPI_KEY": "wrong"}, id="wrong-key"),
        pytest.param({"ZAPI_KEY": ""}, id="empty-key"),
        pytest.param({"ZAPI-KEY": ""}, id="empty-key-dash"),
        pytest.param({"ZAPI-KEY": "wrong"}, id="wrong-key-dash"),
        pytest.param({"ZAPI_KEY": KEY.upper()}, id="key-in-other-case"),
        pytest.param({"ZAPI_KEY": f"{KEY} "}, id="key-with-trailing-space"),
        pytest.param({"ZAPI_KEY": KEY[:-1]}, id="key-prefix"),
        pytest.param({"Authorization": f"Bearer {KEY}"}, id="other-header"),
        pytest.param({"Cookie": "CGISESSID=0123456789abcdef"}, id="unknown-session-cookie"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/system/version"),
        ("POST", "/farms"),
        ("PUT", "/farms/web/actions"),
        ("DELETE", "/farms/web"),
        ("GET", "/no/such/route"),  # the key is checked before routing
    ],
)
def test_requests_without_a_valid_key_are_refused(
    anonymous: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    body = {"action": "stop"} if method in ("POST", "PUT") else None
    response = anonymous.request(method, url(path), headers=headers, json=body)
    expect(response, 401, UNAUTHORIZED)


@pytest.mark.parametrize("header", ["ZAPI_KEY", "ZAPI-KEY", "Zapi_key", "zapi-key", "zApI_kEy"])
def test_key_is_read_from_either_header_spelling_in_any_case(
    anonymous: TestClient, header: str
) -> None:
    response = anonymous.get(url("/farms"), headers={header: KEY})
    expect(response, 200, {"description": "List farms", "params": []})


def test_a_refused_request_changes_nothing(anonymous: TestClient) -> None:
    response = anonymous.post(url("/farms"), json=farm_body(), headers={"ZAPI_KEY": "wrong"})
    expect(response, 401, UNAUTHORIZED)
    response = anonymous.get(url("/farms"), headers={"ZAPI_KEY": KEY})
    expect(response, 200, {"description": "List farms", "params": []})


@pytest.mark.parametrize(
    "path", ["/farms", "/farms/web", "/farms/web/backends/0/maintenance", "/no/such/route"]
)
def test_options_answers_without_a_key(anonymous: TestClient, path: str) -> None:
    response = anonymous.options(url(path))
    expect(response, 200, {})
    assert response.headers["access-control-allow-methods"] == "GET, POST, PUT, DELETE, OPTIONS"


def test_cors_origin_depends_on_whether_a_key_was_sent(anonymous: TestClient) -> None:
    with_key = anonymous.get(url("/farms"), headers={"ZAPI_KEY": KEY})
    without_key = anonymous.get(url("/farms"))
    assert with_key.headers["access-control-allow-origin"] == "*"
    assert without_key.headers["access-control-allow-origin"] == "https://testserver/"


# -- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/farms/web/status"),  # API 4.0 only
        ("GET", "/farms/web/backends/abc"),
        ("PUT", "/farms/web/backends/-1"),
        ("GET", "/farms/modules/gslb"),
        ("GET", "/monitoring/fg"),
        ("GET", "/ids/extra/segments"),
        ("DELETE", "/farms"),  # known path, method not served: the original said 404 too
        ("PATCH", "/farms/web"),
        ("POST", "/system/version"),
        ("GET", ""),
        ("GET", "/"),
    ],
)
def test_unknown_routes_are_404_with_the_path_after_the_base(
    client: TestClient, method: str, path: str
) -> None:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    response = client.request(method, url(path), json=body)
    expect(response, 404, not_found(path or "/"))


def test_v3_alias_serves_the_same_routes(client: TestClient) -> None:
    response = client.post(url("/farms", base=BASE_V3), json=farm_body())
    assert response.status_code == 201
    assert client.get(url("/farms/web", base=BASE_V3)).json() == get_farm(client)
    expect(client.get(url("/nope", base=BASE_V3)), 404, not_found("/nope"))


def test_query_strings_are_ignored(client: TestClient) -> None:
    create_farm(client)
    expect(client.get(url("/farms/web?verbose=1&x")), 200, farm_detail())


def test_trailing_slash_is_not_redirected(client: TestClient) -> None:
    response = client.get(url("/farms/"), follow_redirects=False)
    expect(response, 404, not_found("/farms/"))


def test_head_is_answered_like_get(client: TestClient) -> None:
    response = client.head(url("/system/version"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


# -- content types and bodies --------------------------------------------------------------


WRITES = [
    ("POST", "/farms"),
    ("PUT", "/farms/web"),
    ("PUT", "/farms/web/actions"),
    ("POST", "/farms/web/backends"),
    ("PUT", "/farms/web/backends/0"),
    ("PUT", "/farms/web/backends/0/maintenance"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/html",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-patch+json",
        "",
    ],
)
def test_writes_need_a_json_content_type(
    client: TestClient, method: str, path: str, content_type: str | None
) -> None:
    create_farm(client)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.request(method, url(path), content=b'{"action":"stop"}', headers=headers)
    expect(response, 415, UNSUPPORTED)
    expect(client.get(url("/farms/web")), 200, farm_detail())


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
def test_json_content_type_is_accepted_with_or_without_parameters(
    client: TestClient, content_type: str
) -> None:
    response = client.post(
        url("/farms"),
        content=b'{"farmname":"web","profile":"l4xnat","vip":"198.18.0.10","vport":80}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 201, response.text


def test_get_with_a_json_content_type_and_no_body_is_fine(client: TestClient) -> None:
    response = client.get(url("/farms"), headers={"Content-Type": "application/json"})
    expect(response, 200, {"description": "List farms", "params": []})


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{bad", "The request body is not valid JSON."),
        (b'{"farmname": "web",}', "The request body is not valid JSON."),
        (b"\xff\xfe{}", "The request body is not valid JSON."),
        (b"NaN]", "The request body is not valid JSON."),
        (b"[]", "The request body must be a JSON object."),
        (b'[{"action": "stop"}]', "The request body must be a JSON object."),
        (b"null", "The request body must be a JSON object."),
        (b'"web"', "The request body must be a JSON object."),
        (b"42", "The request body must be a JSON object."),
        (b"true", "The request body must be a JSON object."),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(
    client: TestClient, method: str, path: str, raw: bytes, message: str
) -> None:
    create_farm(client)
    response = client.request(
        method, url(path), content=raw, headers={"Content-Type": "application/json"}
    )
    expect(response, 400, error(f"{method} {path}", message))
    expect(client.get(url("/farms/web")), 200, farm_detail())


def test_an_empty_body_is_an_empty_object(client: TestClient) -> None:
    response = client.post(url("/farms"), headers={"Content-Type": "application/json"})
    message = "The farm name is required to have alphabet letters, numbers or hypens (-) only."
    expect(response, 400, error("Creating farm ''", message))


# -- system --------------------------------------------------------------------------------


def test_system_version(client: TestClient) -> None:
    response = client.get(url("/system/version"))
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Get version"
    params = body["params"]
    assert sorted(params) == [
        "appliance_version",
        "hostname",
        "kernel_version",
        "system_date",
        "zevenet_version",
    ]
    assert all(isinstance(value, str) and value for value in params.values()), params
    assert params["appliance_version"].startswith("ZCE")  # Go: IsCommunityEdition
