"""What ships kernlb, checked without Podman: the wheel, the systemd unit, the compose file."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT = REPO_ROOT / "packaging" / "kernlb.service"
CLUSTER_DROP_IN = REPO_ROOT / "packaging" / "kernlb-cluster.conf"
COMPOSE = REPO_ROOT / "docker" / "compose.yaml"


GUI_STATIC = REPO_ROOT / "app" / "gui" / "static"


def test_wheel_holds_the_app_and_the_migrations(tmp_path: Path) -> None:
    """The image installs kernlb from this wheel: Alembic needs env.py, versions and the mako."""
    # From a copy of what the image's build stage copies: an in-tree build would leave build/
    # here, whose stale files setuptools would put into later wheels.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in ("app", "migrations"):
        shutil.copytree(
            REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    # Offline when this environment can build it (setuptools and wheel installed).
    local = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    isolation = ["--no-build-isolation"] if local else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            *isolation,
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("kernlb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {
        p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "migrations").rglob("*")
    }
    expected = {
        "app/cli.py",
        "app/main.py",
        "app/demo.py",
        "migrations/env.py",
        "migrations/script.py.mako",
        *(m for m in migrations if m.endswith(".py") and "__pycache__" not in m),
        # The web GUI is served from the installed package: every static file must ship.
        *(p.relative_to(REPO_ROOT).as_posix() for p in GUI_STATIC.rglob("*") if p.is_file()),
    }
    assert expected <= names, sorted(expected - names)
    packages = {p.parent.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("app/**/*.py")}
    assert {f"{package}/" for package in packages} <= {n.rsplit("/", 1)[0] + "/" for n in names}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kernlb = app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def unit_directives(path: Path = UNIT) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_syncs_before_the_network_and_serves_unprivileged() -> None:
    unit = unit_directives()
    assert unit["ExecStartPre"] == ["/opt/kernlb/bin/kernlb sync"]
    assert unit["ExecStart"] == ["/opt/kernlb/bin/kernlb serve"]
    assert "network-pre.target" in unit["Before"][0].split()
    assert unit["Wants"] == ["network-pre.target"]
    caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert set(unit["CapabilityBoundingSet"][0].split()) == caps
    assert set(unit["AmbientCapabilities"][0].split()) == caps
    assert unit["StateDirectory"] == ["kernlb"]
    for hardening in ("NoNewPrivileges", "DynamicUser", "ProtectHome", "PrivateTmp"):
        assert unit[hardening] == ["yes"], hardening
    assert unit["ProtectSystem"] == ["strict"]


@pytest.mark.parametrize("drop_in", [None, CLUSTER_DROP_IN], ids=["unit", "cluster drop-in"])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, drop_in: Path | None) -> None:
    analyze, kernlb = shutil.which("systemd-analyze"), shutil.which("kernlb")
    if analyze is None or kernlb is None:
        pytest.skip("needs systemd-analyze and an installed kernlb")
    # verify checks that the executables exist: point the copy at this installation.
    unit = tmp_path / "kernlb.service"
    unit.write_text(UNIT.read_text().replace("/opt/kernlb/bin/kernlb", kernlb))
    if drop_in is not None:  # verify reads kernlb.service.d/ beside the unit
        (tmp_path / "kernlb.service.d").mkdir()
        (tmp_path / "kernlb.service.d" / "cluster.conf").write_text(drop_in.read_text())
    proc = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "kernlb.service" not in proc.stderr, proc.stderr  # nor the drop-in's path


def test_cluster_drop_in_runs_as_root_with_cap_kill_and_nothing_more() -> None:
    """keepalived's script security refuses hooks a non-root user could rewrite, and kernlb
    SIGHUPs keepalived: on a cluster node kernlb runs as root with the network capabilities and
    CAP_KILL, the rest of kernlb.service's confinement unchanged."""
    base, drop_in = unit_directives(), unit_directives(CLUSTER_DROP_IN)
    assert drop_in["DynamicUser"] == ["no"] and drop_in["User"] == ["root"]
    caps = set(base["CapabilityBoundingSet"][0].split()) | {"CAP_KILL"}
    assert set(drop_in["CapabilityBoundingSet"][0].split()) == caps
    assert set(drop_in["AmbientCapabilities"][0].split()) == caps
    assert set(drop_in["ReadWritePaths"][0].split()) == {"-/etc/keepalived", "-/etc/conntrackd"}
    overridden = set(drop_in) - {"ReadWritePaths"}
    assert overridden == {
        "DynamicUser", "User", "Group", "CapabilityBoundingSet", "AmbientCapabilities"
    }  # fmt: skip
    assert base["ProtectSystem"] == ["strict"] and base["NoNewPrivileges"] == ["yes"]


def test_compose_runs_on_the_host_network_with_network_capabilities_only() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"^\s+network_mode: host$", text, re.M)
    assert re.search(r"^\s+cap_drop: \[ALL\]$", text, re.M)
    assert re.search(r"^\s+cap_add: \[NET_ADMIN, NET_BIND_SERVICE, NET_RAW\]$", text, re.M)
    assert re.search(r"^\s+env_file: kernlb.env$", text, re.M)
    assert re.search(r"^\s+- kernlb-state:/var/lib/kernlb", text, re.M)
    assert (COMPOSE.parent / "kernlb.env.example").is_file()
