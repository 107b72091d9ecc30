"""What konsorten/zevenet-lb-go (ZAPI 3.1) sends and decodes, on http/https farms (zapi31.md
§10.1): its calls in its order, with its whole-object PUT bodies, and GetFarm's JSON checked
against the Go struct types field by field (an int where Go has int, a "true"/"false" string
where Go has `bool ,string`, ...), so that the Go client's strict decoding would succeed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .builders import VIP, TestClient, url

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/haproxy").exists(), reason="haproxy is not installed"
)

JSON = dict[str, Any]
BOOL_STRING = ("true", "false")

# Go `FarmDetails` (zapi_farms.go): JSON key -> what the Go type accepts.
FARM_FIELDS: dict[str, Any] = {
    "contimeout": int,
    "error414": str,
    "error500": str,
    "error501": str,
    "error503": str,
    "httpverb": str,
    "listener": str,
    "reqtimeout": int,
    "restimeout": int,
    "resurrectime": int,
    "rewritelocation": str,
    "status": str,
    "vip": str,
    "vport": int,
}
HTTPS_FIELDS: dict[str, Any] = {
    "cipherc": str,
    "ciphers": str,
    "disable_sslv2": BOOL_STRING,
    "disable_sslv3": BOOL_STRING,
    "disable_tlsv1": BOOL_STRING,
    "disable_tlsv1_1": BOOL_STRING,
    "disable_tlsv1_2": BOOL_STRING,
}
SERVICE_FIELDS: dict[str, Any] = {
    "id": str,
    "fgenabled": BOOL_STRING,
    "fglog": str,
    "fgscript": str,
    "fgtimecheck": int,
    "httpsb": BOOL_STRING,
    "leastresp": BOOL_STRING,
    "persistence": str,
    "sessionid": str,
    "ttl": int,
    "redirect": str,
    "redirecttype": str,
    "urlp": str,
    "vhost": str,
}
BACKEND_FIELDS: dict[str, Any] = {
    "id": int,
    "ip": str,
    "port": int,
    "status": str,
    "timeout": (int, type(None)),
    "weight": (int, type(None)),
}


def decodes(value: Any, kind: Any) -> bool:
    if kind == BOOL_STRING:
        return value in BOOL_STRING
    if kind is int or kind == (int, type(None)):
        return (value is None and kind is not int) or (
            isinstance(value, int) and not isinstance(value, bool)
        )
    return isinstance(value, kind)


def check(obj: JSON, fields: dict[str, Any], where: str) -> None:
    for key, kind in fields.items():
        assert key in obj, f"{where}: {key} missing"
        assert decodes(obj[key], kind), f"{where}: {key}={obj[key]!r} does not decode as {kind}"


def get_farm_as_go(client: TestClient, name: str) -> JSON:
    """GetFarm: decode like the Go client (and inject what it injects)."""
    response = client.get(url(f"/farms/{name}"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: JSON = response.json()
    params = body["params"]
    check(params, FARM_FIELDS, "params")
    if params["listener"] == "https":
        check(params, HTTPS_FIELDS, "params")
        for cert in params["certlist"]:
            assert isinstance(cert["file"], str) and isinstance(cert["id"], int)
    services = body["services"]
    assert isinstance(services, list)
    for service in services:
        check(service, SERVICE_FIELDS, f"service {service.get('id')}")
        for backend in service["backends"]:
            check(backend, BACKEND_FIELDS, f"backend {backend.get('id')}")
    details = {**params, "farmname": name, "services": services}
    details.setdefault("certlist", None)
    return details


def test_the_go_client_on_an_https_farm(client: TestClient) -> None:
    # CreateFarmAsHTTPS = CreateFarmAsHTTP (POST, then GetFarm) + UpdateFarm with the whole object
    create = {"farmname": "gofarm", "profile": "http", "vip": VIP, "vport": 443}
    assert client.post(url("/farms"), json=create).status_code == 201
    farm = get_farm_as_go(client, "gofarm")
    farm.update(
        listener="https",
        ciphers="highsecurity",
        disable_sslv2="false",
        disable_sslv3="false",
        disable_tlsv1="false",
    )
    response = client.put(url("/farms/gofarm"), json=farm)
    assert response.status_code == 200, response.text

    # CreateService, then UpdateService (whole ServiceDetails, then PUT fg)
    assert client.post(url("/farms/gofarm/services"), json={"id": "web"}).status_code == 201
    service = next(s for s in get_farm_as_go(client, "gofarm")["services"] if s["id"] == "web")
    service.update(
        farmname="gofarm",
        vhost="^www\\.example\\.com$",
        persistence="COOKIE",
        sessionid="JSESSIONID",
        ttl=300,
        redirecttype="",
        fglog="",
    )
    response = client.put(url("/farms/gofarm/services/web"), json=service)
    assert response.status_code == 200, response.text
    # ... and UpdateService's last call: the service's farmguardian, its fields as Go sends them
    fg = {
        "service": "web",
        "fgenabled": "true",
        "fglog": "",
        "fgscript": "check_http -H HOST -p PORT",
        "fgtimecheck": 7,
    }
    response = client.put(url("/farms/gofarm/fg"), json=fg)
    assert response.status_code == 200, response.text
    assert response.json()["params"] == {
        "fgenabled": "true",
        "fglog": "false",
        "fgscript": "check_http -H HOST -p PORT",
        "fgtimecheck": 7,
    }

    # CreateBackend {ip, port:int}, then GetFarm to find it by address
    body = {"ip": "192.0.2.7", "port": 8080}
    assert client.post(url("/farms/gofarm/services/web/backends"), json=body).status_code == 201
    farm = get_farm_as_go(client, "gofarm")
    backend = farm["services"][0]["backends"][0]
    assert (backend["ip"], backend["port"], backend["timeout"]) == ("192.0.2.7", 8080, None)

    # UpdateBackend: the whole BackendDetails, with the names Go injects
    backend.update(weight=4, farmname="gofarm", servicename="web")
    response = client.put(url("/farms/gofarm/services/web/backends/0"), json=backend)
    assert response.status_code == 200, response.text

    # SetBackendMaintenance(cut), then back up
    path = url("/farms/gofarm/services/web/backends/0/maintenance")
    assert client.put(path, json={"action": "maintenance", "mode": "cut"}).status_code == 200
    farm = get_farm_as_go(client, "gofarm")
    assert farm["services"][0]["backends"][0]["status"] == "maintenance"
    assert client.put(path, json={"action": "up"}).status_code == 200

    final = get_farm_as_go(client, "gofarm")
    assert final["listener"] == "https" and final["ciphers"] == "highsecurity"
    assert final["certlist"] == [{"file": "zencert.pem", "id": 1}]
    assert final["services"][0]["vhost"] == "^www\\.example\\.com$"
    assert final["services"][0]["backends"][0]["weight"] == 4
    assert (final["services"][0]["fgenabled"], final["services"][0]["fgtimecheck"]) == ("true", 7)

    # GetAllFarms: vport is decoded as a string-encoded int (`json:"vport,string"`)
    listed = client.get(url("/farms")).json()["params"]
    assert [(f["farmname"], f["profile"], f["vport"]) for f in listed] == [
        ("gofarm", "https", "443")
    ]
