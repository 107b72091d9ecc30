"""HaproxyEngine without HAProxy running: where its sockets live, that the directory is its
own and goes away, and how HAProxy's `show stat` becomes the backends' health."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.haproxy.engine import HaproxyEngine, ProxyRejected, default_run_dir


def test_sockets_live_in_the_state_dir_unless_the_path_is_too_long(tmp_path: Path) -> None:
    assert default_run_dir(tmp_path) == tmp_path.resolve() / "haproxy" / "run"
    deep = tmp_path / ("d" * 120)
    fallback = default_run_dir(deep)
    assert fallback.parent == Path("/tmp") and fallback.name.startswith("kernlb-haproxy-")
    assert default_run_dir(deep) == fallback  # the same state dir, the same directory


def test_a_run_dir_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too long"):
        HaproxyEngine(state_dir=tmp_path, run_dir=tmp_path / ("r" * 120))


def test_the_run_dir_is_private_and_removed_on_close(tmp_path: Path) -> None:
    engine = HaproxyEngine(state_dir=tmp_path)
    engine._make_run_dir()
    assert (os.stat(engine.run_dir).st_mode & 0o777) == 0o700
    engine.admin_socket.touch()  # what HAProxy leaves behind
    engine.peer_socket.touch()
    engine.close()
    assert not engine.run_dir.exists()


def test_a_run_dir_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "elsewhere")
    engine = HaproxyEngine(state_dir=tmp_path, run_dir=tmp_path / "run")
    with pytest.raises(ProxyRejected, match="not a directory of kernlb's own"):
        engine._make_run_dir()


def test_down_servers_are_the_failing_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = HaproxyEngine(state_dir=tmp_path)
    rows = [
        {"pxname": "svc1", "svname": "s1", "status": "UP"},
        {"pxname": "svc1", "svname": "s2", "status": "DOWN"},
        {"pxname": "svc1", "svname": "s3", "status": "DOWN 1/2"},  # one check passed, still down
        {"pxname": "svc1", "svname": "s4", "status": "UP 1/3"},  # failing, not down yet
        {"pxname": "svc1", "svname": "s5", "status": "MAINT"},
        {"pxname": "svc1", "svname": "BACKEND", "status": "DOWN"},
        {"pxname": "farm1", "svname": "FRONTEND", "status": "OPEN"},
    ]
    monkeypatch.setattr(engine, "show_stat", lambda: rows)
    assert engine.down_servers() == frozenset({2, 3})
