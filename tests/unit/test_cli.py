"""The command line, without a kernel: migrate, key rotation, render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.db.session import make_engine, make_session_factory
from app.services.keys import KeyStore


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_migrate_then_render_an_empty_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--db", db(tmp_path), "--state-dir", str(tmp_path)]) == 0
    assert "database at head" in capsys.readouterr().out
    assert main(["render", "--db", db(tmp_path), "--state-dir", str(tmp_path)]) == 0
    batch = json.loads(capsys.readouterr().out)["nftables"]
    tables = [c["add"]["table"] for c in batch if "table" in c.get("add", {})]
    assert tables == [{"family": "inet", "name": "kernlb"}, {"family": "netdev", "name": "kernlb"}]
    chains = {c["add"]["chain"]["name"] for c in batch if "chain" in c.get("add", {})}
    assert chains == {
        "nat-pre",
        "nat-post",
        "dispatch4",
        "dispatch6",
        "slot",
        "slot-dnat4",
        "slot-dnat6",
        "dnat4",
        "dnat6",
    }


def test_key_set_and_generate_store_only_a_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "--set", "S3cretKey", "--db", db(tmp_path)]) == 0
    store = KeyStore(make_session_factory(make_engine(db(tmp_path))))
    assert store.verify("S3cretKey") and not store.verify("other")
    capsys.readouterr()
    assert main(["key", "--generate", "--db", db(tmp_path)]) == 0
    generated = capsys.readouterr().out.strip()
    assert len(generated) == 40 and generated.isalnum()
    assert store.verify(generated) and not store.verify("S3cretKey")
    assert generated.encode() not in (tmp_path / "cli.db").read_bytes()


def test_key_set_refuses_non_alphanumeric(tmp_path: Path) -> None:
    assert main(["key", "--set", "bad key!", "--db", db(tmp_path)]) == 2
