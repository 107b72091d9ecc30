"""The audit log: every authenticated write request, redacted, newest first, paged, bounded;
`GET /system/audit` and `kernlb audit`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.cli import main as cli_main
from app.services.audit import AuditLog, AuditRecord
from app.settings import Settings

from .builders import KEY, TestClient, add_backend, create_farm, url


def audit(client: TestClient, **query: int) -> dict[str, object]:
    response = client.get(url("/system/audit"), params=query)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_writes_are_recorded_newest_first(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)
    client.put(url("/farms/web"), json={"vport": "not a port"})
    client.post(url("/system/users/zapi"), json={"key": "SecretKeySecretKey1"})
    client.headers["ZAPI_KEY"] = "SecretKeySecretKey1"
    client.get(url("/farms"))  # reads are not audited
    page = audit(client)
    entries = page["params"]
    assert isinstance(entries, list)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/zapi/v3.1/zapi.cgi/system/users/zapi", 200),
        ("PUT", "/zapi/v3.1/zapi.cgi/farms/web", 400),
        ("POST", "/zapi/v3.1/zapi.cgi/farms/web/backends", 201),
        ("POST", "/zapi/v3.1/zapi.cgi/farms", 201),
    ]
    key_change, failed_put, backend, farm = entries
    assert key_change["body"] == '{"key":"********"}'
    assert "SecretKey" not in json.dumps(page)
    assert (
        farm["farms"] == ["web"] and backend["farms"] == ["web"] and failed_put["farms"] == ["web"]
    )
    assert key_change["farms"] == []
    assert json.loads(farm["body"])["farmname"] == "web"
    assert farm["source"] == "testclient"
    assert farm["duration_ms"] > 0
    assert datetime.fromisoformat(farm["time"]) <= datetime.now(UTC)
    assert (page["page"], page["limit"], page["total"]) == (1, 50, 4)


def test_pages(client: TestClient) -> None:
    for port in range(80, 85):
        create_farm(client, name=f"web{port}", vport=port)
    first = audit(client, limit=2)
    second = audit(client, limit=2, page=2)
    third = audit(client, limit=2, page=3)
    names = [e["farms"][0] for p in (first, second, third) for e in p["params"]]  # type: ignore[attr-defined]
    assert names == ["web84", "web83", "web82", "web81", "web80"]
    assert first["total"] == 5
    bad = client.get(url("/system/audit"), params={"limit": 0})
    assert bad.status_code == 400


def test_refused_keys_are_not_audited(anonymous: TestClient) -> None:
    response = anonymous.post(url("/farms"), json={}, headers={"ZAPI_KEY": "wrong"})
    assert response.status_code == 401
    listing = anonymous.get(url("/system/audit"), headers={"ZAPI_KEY": KEY}).json()
    assert listing["total"] == 0


def test_large_and_non_json_bodies_store_only_their_size(client: TestClient) -> None:
    client.post(url("/farms"), content=b"x" * 5000, headers={"Content-Type": "application/json"})
    client.post(url("/farms"), content=b"{not json", headers={"Content-Type": "application/json"})
    bodies = [e["body"] for e in audit(client)["params"]]  # type: ignore[attr-defined]
    assert bodies == ["(9 bytes, not JSON)", "(5000 bytes, not stored)"]


def test_bounded_by_count_and_age(tmp_path: Path) -> None:
    from app.db.session import make_engine, make_session_factory, migrate

    url_ = f"sqlite:///{tmp_path}/a.db"
    migrate(url_)
    log = AuditLog(make_session_factory(make_engine(url_)), max_entries=10, max_age_days=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(250):
        at = start + timedelta(minutes=i)
        log.add(AuditRecord(at, "198.18.1.1", "PUT", f"/p{i}", "", 200, 1.0, ()))
    total, entries = log.page(page=1, limit=100)
    assert entries[0].path == "/p249"
    assert total <= 10 + 100  # pruned every 100 entries down to the newest 10
    late = start + timedelta(days=3)
    log.add(AuditRecord(late, "198.18.1.1", "PUT", "/late", "", 200, 1.0, ()))
    for i in range(100):
        log.add(AuditRecord(late, "198.18.1.1", "PUT", f"/x{i}", "", 200, 1.0, ()))
    total, entries = log.page(page=1, limit=500)
    assert all(e.at >= (late - timedelta(days=1)).replace(tzinfo=None) for e in entries)


def test_kernlb_audit_prints_the_log(
    client: TestClient, settings: Settings, capsys: object
) -> None:
    create_farm(client)
    # Another process sees the entry once the writer thread stored it (within COALESCE_S).
    deadline = time.monotonic() + 5
    while True:
        assert cli_main(["audit", "--db", settings.database_url, "--json"]) == 0
        out = capsys.readouterr().out  # type: ignore[attr-defined]
        printed = json.loads(out)
        if printed["params"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [e["path"] for e in printed["params"]] == ["/zapi/v3.1/zapi.cgi/farms"]
    assert cli_main(["audit", "--db", settings.database_url]) == 0
    text = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "POST   /zapi/v3.1/zapi.cgi/farms  farms=web" in text


def test_entries_are_stored_in_order_by_one_writer(tmp_path: Path) -> None:
    """Requests only queue their entries; the writer stores them on its own, in order, in
    batches; `close` stores what is left."""
    from app.db.session import make_engine, make_session_factory, migrate

    url_ = f"sqlite:///{tmp_path}/a.db"
    migrate(url_)
    factory = make_session_factory(make_engine(url_))
    log = AuditLog(factory, max_entries=1000, max_age_days=1, coalesce=0.01)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(30):
        log.add(AuditRecord(start, "198.18.1.1", "PUT", f"/p{i}", "", 200, 1.0, ()))
    other = AuditLog(factory, max_entries=1000, max_age_days=1)  # another process's view
    deadline = time.monotonic() + 5
    while other.page(page=1, limit=100)[0] < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    total, entries = other.page(page=1, limit=100)
    assert total == 30
    assert [e.path for e in entries] == [f"/p{i}" for i in reversed(range(30))]
    log.add(AuditRecord(start, "198.18.1.1", "PUT", "/last", "", 200, 1.0, ()))
    log.close()
    assert other.page(page=1, limit=1)[1][0].path == "/last"
