"""http/https farms through ZAPI v3.1 (zapi31.md §2 rows 16-26, §9.1), HAProxy checking each
configuration (`haproxy -c`; it never runs here: the kernel is a fake)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from app.tls import self_signed

from .builders import VIP, TestClient, create_farm, error, expect, url

TWO_DAYS = datetime.timedelta(days=2)
pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/haproxy").exists(), reason="haproxy is not installed"
)


def make_pem(cn: str = "www.example.com") -> tuple[str, str]:
    """A throw-away self-signed certificate: (certificate PEM, key PEM)."""
    cert, key = self_signed(cn, valid_from=datetime.timedelta(hours=1), valid_for=TWO_DAYS)
    return cert.decode(), key.decode()


def create_http(client: TestClient, name: str = "www", vport: Any = 80) -> None:
    response = client.post(
        url("/farms"), json={"farmname": name, "profile": "http", "vip": VIP, "vport": vport}
    )
    expect(
        response,
        201,
        {
            "description": f"Creating farm '{name}'",
            "params": {
                "farmname": name,
                "interface": "eth0",
                "profile": "http",
                "vip": VIP,
                "vport": int(vport),
            },
        },
    )


def add_service(client: TestClient, farm: str, service: str, **fields: Any) -> JSON:
    response = client.post(url(f"/farms/{farm}/services"), json={"id": service})
    expect(response, 201, {"description": "New service", "params": {"id": service}})
    if fields:
        response = client.put(url(f"/farms/{farm}/services/{service}"), json=fields)
        assert response.status_code == 200, response.text
    body: JSON = client.get(url(f"/farms/{farm}/services/{service}")).json()["params"]
    return body


JSON = dict[str, Any]


def config(settings: Settings) -> str:
    return (settings.state_dir / "haproxy" / "haproxy.cfg").read_text()


def test_http_farm_shape_services_and_backends(client: TestClient, settings: Settings) -> None:
    create_http(client, vport="8080")
    add_service(client, "www", "api", vhost="^www\\.example\\.com$", urlp="^/api/")
    response = client.post(
        url("/farms/www/services/api/backends"), json={"ip": "192.0.2.1", "port": "8080"}
    )
    expect(
        response,
        201,
        {
            "description": "New service backend",
            "message": "Added backend to service successfully",
            "params": {"id": 0, "ip": "192.0.2.1", "port": 8080, "timeout": None, "weight": 1},
            "status": "up",
        },
    )
    client.post(
        url("/farms/www/services/api/backends"),
        json={"ip": "192.0.2.2", "port": 8080, "weight": 3, "timeout": 30},
    )
    expect(
        client.get(url("/farms/www")),
        200,
        {
            "description": "List farm www",
            "params": {
                "contimeout": 20,
                "error414": "Request URI is too long",
                "error500": "An internal server error occurred. Please try again later.",
                "error501": "This method may not be used.",
                "error503": "The service is not available. Please try again later.",
                "httpverb": "standardHTTP",
                "listener": "http",
                "reqtimeout": 30,
                "resurrectime": 10,
                "restimeout": 45,
                "rewritelocation": "disabled",
                "status": "up",
                "vip": VIP,
                "vport": 8080,
            },
            "services": [
                {
                    "backends": [
                        {
                            "id": 0,
                            "ip": "192.0.2.1",
                            "port": 8080,
                            "status": "up",
                            "timeout": None,
                            "weight": 1,
                        },
                        {
                            "id": 1,
                            "ip": "192.0.2.2",
                            "port": 8080,
                            "status": "up",
                            "timeout": 30,
                            "weight": 3,
                        },
                    ],
                    "fgenabled": "false",
                    "fglog": "false",
                    "fgscript": "",
                    "fgtimecheck": 5,
                    "httpsb": "false",
                    "id": "api",
                    "leastresp": "false",
                    "persistence": "",
                    "redirect": "",
                    "redirecttype": "default",
                    "sessionid": "",
                    "ttl": 120,
                    "urlp": "^/api/",
                    "vhost": "^www\\.example\\.com$",
                }
            ],
        },
    )
    text = config(settings)
    assert (
        'use_backend svc1 if { req.hdr(host) -m reg -i "^www\\\\.example\\\\.com\\$" } '
        '{ url -m reg "^/api/" }'
    ) in text
    assert "server s2 ipv4@192.0.2.2:8080 weight 3" in text
    # Maintenance: drain is weight 0 (sticky sessions only), cut is `disabled`.
    path = url("/farms/www/services/api/backends/0/maintenance")
    expect(
        client.put(path, json={"action": "maintenance", "mode": "drain"}),
        200,
        {
            "description": "Set service backend status",
            "params": {"action": "maintenance", "farm": {"status": "maintenance"}},
        },
    )
    assert "server s1 ipv4@192.0.2.1:8080 weight 0 " in config(settings)
    client.put(path, json={"action": "maintenance", "mode": "cut"})
    assert "server s1 ipv4@192.0.2.1:8080 weight 1 disabled" in config(settings)
    client.put(path, json={"action": "up"})
    # Positional ids shift after a delete, as in the original.
    expect(
        client.delete(url("/farms/www/services/api/backends/0")),
        200,
        {
            "description": "Delete service backend",
            "message": "Backend removed",
            "status": "up",
            "success": "true",
        },
    )
    backends = client.get(url("/farms/www/services/api/backends")).json()["params"]
    assert [(b["id"], b["ip"]) for b in backends] == [(0, "192.0.2.2")]
    summary = client.get(url("/farms/www/summary")).json()
    assert summary["services"] == [{"id": "api"}]


def test_list_and_overlap_with_l4xnat(client: TestClient) -> None:
    create_http(client, "www", 80)
    create_farm(client, name="l4", vport="443")
    names = [
        (f["farmname"], f["profile"], f["vport"])
        for f in client.get(url("/farms")).json()["params"]
    ]
    assert names == [("www", "http", "80"), ("l4", "l4xnat", "443")]
    stats = client.get(url("/stats/farms")).json()["farms"]
    assert {f["farmname"] for f in stats} == {"www", "l4"}
    # Same VIP and port: refused whichever kind comes second.
    response = client.post(
        url("/farms"), json={"farmname": "l4b", "profile": "l4xnat", "vip": VIP, "vport": "80"}
    )
    assert response.status_code == 400
    assert "overlap with the running farm 'www'" in response.json()["message"]
    response = client.post(
        url("/farms"), json={"farmname": "www2", "profile": "http", "vip": VIP, "vport": 443}
    )
    assert response.status_code == 400
    assert "overlap with the running farm 'l4'" in response.json()["message"]
    response = client.post(
        url("/farms"), json={"farmname": "l4", "profile": "http", "vip": VIP, "vport": 81}
    )
    expect(
        response,
        400,
        error(
            "Creating farm 'l4'", "Error trying to create a new farm, the farm name already exists."
        ),
    )


def test_l4_endpoints_answer_http_farms_with_the_reference_errors(client: TestClient) -> None:
    create_http(client)
    expect(
        client.get(url("/farms/www/backends")),
        400,
        error("List backends", "The farm www with profile http does not support this request."),
    )
    expect(
        client.post(url("/farms/www/backends"), json={"ip": "192.0.2.1"}),
        400,
        error("New farm backend", "The http farm profile can have backends in services only."),
    )
    expect(
        client.put(url("/farms/www/backends/0"), json={"weight": 2}),
        404,
        error("Modify backend", "The http farm profile has backends only in services."),
    )
    expect(
        client.delete(url("/farms/www/backends/0")),
        400,
        error("Delete backend", "The http farm profile has backends only in services."),
    )
    expect(
        client.put(url("/farms/www/backends/0/maintenance"), json={"action": "up"}),
        404,
        error("Set backend status", "Only L4xNAT farm profile supports this feature."),
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vhost": "www.(example"}, "Invalid vhost value: it must be a valid regular expression."),
        ({"urlp": "^/api/[a-"}, "Invalid urlp value: it must be a valid regular expression."),
        ({"urlp": "^/a\npi"}, "Invalid urlp value: it must be a valid regular expression."),
        ({"redirect": "www.example.com/x"}, "Invalid redirect value."),
        ({"redirect": "ftp://example.com/"}, "Invalid redirect value."),
        ({"redirect": 'http://e.com/"x y'}, "Invalid redirect value."),
        ({"redirecttype": "sometimes"}, "Invalid redirecttype value."),
        ({"persistence": "SSL"}, "Invalid persistence."),
        ({"persistence": "cookie"}, "Invalid persistence."),
        ({"persistence": "COOKIE"}, "The persistence COOKIE needs a sessionid."),
        ({"ttl": "ten"}, "Invalid ttl, must be numeric."),
        ({"leastresp": True}, "Invalid leastresp."),
        ({"sessionid": "a b"}, "Invalid sessionid value."),
    ],
)
def test_bad_service_input(
    client: TestClient, settings: Settings, fields: JSON, message: str
) -> None:
    create_http(client)
    add_service(client, "www", "svc")
    before = config(settings)
    response = client.put(url("/farms/www/services/svc"), json={"vhost": "^ok$", **fields})
    expect(response, 400, error("Modify service", message))
    assert config(settings) == before
    assert client.get(url("/farms/www/services/svc")).json()["params"]["vhost"] == ""


BAD_IP = "Invalid backend IP value, please insert a valid value."
BAD_WEIGHT = "Invalid weight value for a backend, it must be 1-9."
BAD_TIMEOUT = "Invalid timeout value for a backend, it must be empty or greater than 0."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"port": 80}, BAD_IP),
        ({"ip": "192.0.2.300", "port": 80}, BAD_IP),
        ({"ip": "192.0.2.1"}, "Invalid port for a backend."),
        ({"ip": "192.0.2.1", "port": 70000}, "Invalid port for a backend."),
        ({"ip": "192.0.2.1", "port": 80, "weight": 10}, BAD_WEIGHT),
        ({"ip": "192.0.2.1", "port": "80", "weight": "x"}, BAD_WEIGHT),
        ({"ip": "192.0.2.1", "port": 80, "timeout": 0}, BAD_TIMEOUT),
    ],
)
def test_bad_backend_input(client: TestClient, body: JSON, message: str) -> None:
    create_http(client)
    add_service(client, "www", "svc")
    response = client.post(url("/farms/www/services/svc/backends"), json=body)
    expect(response, 400, error("New service backend", message))


def test_service_names(client: TestClient) -> None:
    create_http(client)
    add_service(client, "www", "a")
    expect(
        client.post(url("/farms/www/services"), json={"id": "a"}),
        400,
        error("New service", "Error, the service a already exists."),
    )
    expect(
        client.post(url("/farms/www/services"), json={"id": "a b"}),
        400,
        error(
            "New service", "Service name is not valid, only allowed numbers, letters and hyphens."
        ),
    )
    expect(
        client.get(url("/farms/www/services/zz")),
        404,
        error("Get services of a farm", "The required service does not exist."),
    )
    expect(
        client.delete(url("/farms/www/services/a")),
        200,
        {
            "description": "Delete service",
            "message": "The service a in farm www has been deleted.",
            "success": "true",
        },
    )


def upload(client: TestClient, name: str, pem: str) -> Any:
    return client.post(
        url(f"/certificates/{name}"),
        content=pem.encode(),
        headers={"Content-Type": "application/x-pem-file"},
    )


def test_certificates_and_https(client: TestClient, settings: Settings) -> None:
    cert, key = make_pem()
    expect(
        upload(client, "web.pem", cert + key),
        200,
        {
            "description": "Upload PEM certificate",
            "message": "Certificate uploaded",
            "success": "true",
        },
    )
    expect(
        upload(client, "web.pem", cert + key),
        400,
        error("Upload PEM certificate", "Certificate file name already exists"),
    )
    bad = (
        "The certificate is not valid: a PEM file with a certificate and its private key "
        "is expected."
    )
    expect(upload(client, "nokey.pem", cert), 400, error("Upload PEM certificate", bad))
    expect(upload(client, "junk.pem", "hello"), 400, error("Upload PEM certificate", bad))
    other_cert, _other_key = make_pem("other")
    expect(
        upload(client, "mixed.pem", other_cert + key),
        400,
        error(
            "Upload PEM certificate",
            "The certificate is not valid: the private key does not belong to the certificate.",
        ),
    )
    listing = client.get(url("/certificates")).json()["params"]
    assert [(c["file"], c["CN"], c["type"]) for c in listing] == [
        ("web.pem", "www.example.com", "Certificate")
    ]

    create_http(client, vport=443)
    expect(
        client.put(url("/farms/www"), json={"ciphers": "highsecurity"}),
        400,
        error(
            "Modify HTTP farm www",
            "To modify ciphers, chiperc or certname, listener must be https.",
        ),
    )
    response = client.put(url("/farms/www"), json={"listener": "https", "disable_tlsv1": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["params"]["certlist"] == [{"file": "zencert.pem", "id": 1}]
    expect(
        client.post(url("/farms/www/certificates"), json={"file": "web.pem"}),
        200,
        {
            "description": "Add certificate",
            "message": "The certificate web.pem has been added to the SNI list of farm www.",
            "success": "true",
        },
    )
    params = client.get(url("/farms/www")).json()["params"]
    assert params["certlist"] == [{"file": "web.pem", "id": 1}]
    assert (params["disable_tlsv1"], params["disable_tlsv1_1"]) == ("true", "false")
    assert "ssl-min-ver TLSv1.1 ssl-max-ver TLSv1.3" in config(settings)
    expect(
        client.delete(url("/certificates/web.pem")),
        400,
        error("Delete certificate", "File can't be deleted because it's in use by a farm"),
    )


def test_haproxy_refusal_rolls_back(client: TestClient, settings: Settings) -> None:
    create_http(client, vport=443)
    client.put(url("/farms/www"), json={"listener": "https"})
    before = client.get(url("/farms/www")).json()
    cfg = config(settings)
    # Valid characters, but no cipher OpenSSL knows: only HAProxy can tell.
    response = client.put(
        url("/farms/www"), json={"ciphers": "customsecurity", "cipherc": "NO-SUCH-CIPHER"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["description"] == "Modify HTTP farm www"
    assert body["message"].startswith("HAProxy rejected the configuration: ")
    assert client.get(url("/farms/www")).json() == before
    assert config(settings) == cfg


FG = "Modify farm guardian"


def farm_www_with_service_web(client: TestClient) -> None:
    """http farm `www`, service `web`, one backend 192.0.2.1:8080."""
    create_http(client)
    add_service(client, "www", "web")
    client.post(url("/farms/www/services/web/backends"), json={"ip": "192.0.2.1", "port": 8080})


def test_service_farmguardian_becomes_haproxy_checks(
    client: TestClient, settings: Settings
) -> None:
    farm_www_with_service_web(client)
    script = "check_http -I HOST -p PORT -u /health -e 200,204 -s 'all good' -t 2"
    body = {"service": "web", "fgenabled": "true", "fgscript": script, "fgtimecheck": "3"}
    expect(
        client.put(url("/farms/www/fg"), json=body),
        200,
        {
            "description": FG,
            "message": "Success, some parameters have been changed in farm guardian in farm www.",
            "params": {"fgenabled": "true", "fglog": "false", "fgscript": script, "fgtimecheck": 3},
        },
    )
    text = config(settings)
    assert "    option httpchk\n" in text
    assert '    http-check send meth GET uri "/health" ver HTTP/1.0\n' in text
    assert "    http-check expect status 200,204\n" in text
    assert '    http-check expect string "all good"\n' in text
    assert "    timeout check 2s\n" in text
    assert (
        "check inter 3s fall 1 rise 1 on-marked-down shutdown-sessions" in text
    )  # Zevenet's http farmguardians cut the connections of a backend taken down
    service = client.get(url("/farms/www/services/web")).json()["params"]
    assert {k: service[k] for k in ("fgenabled", "fglog", "fgscript", "fgtimecheck")} == {
        "fgenabled": "true",
        "fglog": "false",
        "fgscript": script,
        "fgtimecheck": 3,
    }
    # a TCP check on another port, two failures to go down, no connection cutting
    body = {
        "service": "web",
        "fgscript": "check_tcp -H HOST -p 9000",
        "fgfall": 2,
        "fgcutconns": "false",
    }
    response = client.put(url("/farms/www/fg"), json=body)
    assert response.status_code == 200, response.text
    assert response.json()["params"]["fgfall"] == 2
    text = config(settings)
    assert "httpchk" not in text
    assert "check inter 3s fall 2 rise 1 port 9000\n" in text
    # off: HAProxy's own TCP check every resurrectime again; the settings are kept
    response = client.put(url("/farms/www/fg"), json={"service": "web", "fgenabled": "false"})
    assert response.status_code == 200, response.text
    assert "check inter 10s\n" in config(settings)
    service = client.get(url("/farms/www")).json()["services"][0]
    assert (service["fgenabled"], service["fgscript"]) == ("false", "check_tcp -H HOST -p 9000")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"fgenabled": "true"}, 404, "Invalid service name, please insert a valid value."),
        (
            {"service": "nope", "fgenabled": "true"},
            404,
            "Invalid service name, please insert a valid value.",
        ),
        ({"service": "web"}, 400, "Not found any param."),
        (
            {"service": "web", "fgtimecheck": 0},
            400,
            "Invalid format, please insert a valid fgtimecheck.",
        ),
        (
            {"service": "web", "fgenabled": True},
            400,
            "Invalid format, please insert a valid fgenabled.",
        ),
        ({"service": "web", "fgscript": ""}, 400, "Invalid fgscript, can't be blank."),
        ({"service": "web", "color": "red"}, 400, "Illegal params: color"),
        (
            {"service": "web", "fgenabled": "true", "fgscript": "check_nothing -H HOST"},
            400,
            "Invalid fgscript, the check 'check_nothing' is not installed in "
            "/usr/lib/nagios/plugins.",
        ),
        (
            {"service": "web", "fgenabled": "true", "fgscript": "check_http -I HOST -e HTTP/1.1"},
            400,
            "Invalid fgscript, -e takes HTTP status codes (e.g. 200,301) for http farms.",
        ),
    ],
)
def test_bad_service_farmguardian(
    client: TestClient, settings: Settings, body: JSON, status: int, message: str
) -> None:
    create_http(client)
    add_service(client, "www", "web")
    before = config(settings)
    expect(client.put(url("/farms/www/fg"), json=body), status, error(FG, message))
    assert config(settings) == before
    assert client.get(url("/farms/www/services/web")).json()["params"]["fgenabled"] == "false"


def test_farmguardian_of_a_missing_farm(client: TestClient) -> None:
    response = client.put(url("/farms/nope/fg"), json={"service": "web", "fgenabled": "true"})
    expect(response, 404, error(FG, "The farmname nope does not exist."))


def test_stick_tables_use_the_local_peer(client: TestClient, settings: Settings) -> None:
    create_http(client)
    add_service(client, "www", "web")
    assert "peers" not in config(settings)  # no stick table, no peers section
    response = client.put(url("/farms/www/services/web"), json={"persistence": "IP"})
    assert response.status_code == 200, response.text
    text = config(settings)
    assert "    localpeer kernlb\n" in text
    assert "\npeers kernlb\n    peer kernlb unix@/" in text
    assert "    stick-table type ipv6 size 1m expire 120s peers kernlb\n" in text


def test_service_farmguardian_under_the_service_path(
    client: TestClient, settings: Settings
) -> None:
    farm_www_with_service_web(client)
    body = {"fgenabled": "true", "fgscript": "check_tcp -H HOST -p PORT", "fgtimecheck": 4}
    response = client.put(url("/farms/www/services/web/fg"), json=body)
    assert response.status_code == 200, response.text
    assert "check inter 4s fall 1 rise 1 on-marked-down shutdown-sessions" in config(settings)
    expect(
        client.get(url("/farms/www/services/web/fg")),
        200,
        {
            "description": "Show farm guardian of www service web",
            "params": {
                "fgenabled": "true",
                "fglog": "false",
                "fgscript": "check_tcp -H HOST -p PORT",
                "fgtimecheck": 4,
                "fgtimeout": 0,
                "fgrise": 1,
                "fgfall": 1,
                "fgcutconns": "true",
            },
            "backends": [
                {
                    "id": 0,
                    "ip": "192.0.2.1",
                    "port": 8080,
                    "timeout": None,
                    "weight": 1,
                    "status": "up",
                }
            ],
        },
    )
    missing = client.put(url("/farms/www/services/nope/fg"), json=body)
    expect(missing, 404, error(FG, "Invalid service name, please insert a valid value."))
    # an l4xnat farm has no services
    create_farm(client, name="l4", vport=81)
    refused = client.put(url("/farms/l4/services/web/fg"), json=body)
    expect(refused, 400, error(FG, "L4xNAT profile farms do not have services."))


def test_fglog_logs_every_check(client: TestClient, settings: Settings) -> None:
    create_http(client)
    add_service(client, "www", "web")
    body = {"service": "web", "fgenabled": "true", "fgscript": "check_tcp -H HOST -p PORT"}
    assert client.put(url("/farms/www/fg"), json=body).status_code == 200
    assert "log-health-checks" not in config(settings)
    response = client.put(url("/farms/www/fg"), json={"service": "web", "fglog": "true"})
    assert response.status_code == 200, response.text
    text = config(settings)  # `haproxy -c` accepted it
    assert "    log stdout format short local0\n" in text
    assert "    log global\n    option log-health-checks\n" in text


def test_a_plugin_runs_as_an_external_check(client: TestClient, settings: Settings) -> None:
    create_http(client)
    add_service(client, "www", "web")
    script = "check_tcp -H HOST -p PORT -w 2 -c 3"  # -w/-c: not native, the plugin runs
    body = {"service": "web", "fgenabled": "true", "fgscript": script}
    response = client.put(url("/farms/www/fg"), json=body)
    assert response.status_code == 200, response.text
    text = config(settings)  # `haproxy -c` accepted it
    assert "    insecure-fork-wanted\n    external-check\n" in text
    assert "    option external-check\n" in text
    runner = next((settings.state_dir / "haproxy").glob("assets-*/kernlb-fgcheck"))
    assert f'    external-check command "{runner}"\n' in text
    assert runner.stat().st_mode & 0o777 == 0o700
    arguments = next((settings.state_dir / "haproxy").glob("assets-*/fgcheck-svc*.json"))
    assert arguments.read_text() == (
        '["/usr/lib/nagios/plugins/check_tcp", "-H", "HOST", "-p", "PORT", "-w", "2", "-c", "3"]'
    )
    assert script not in text  # the arguments live in the file, not in the configuration
