"""Fixtures of the container tests: Podman, the base image, the kernlb image (built once).

Where Podman, runc or network namespaces are unavailable the tests skip, unless
``KERNLB_REQUIRE_NETNS=1`` (CI), where they fail: there a skip would hide a broken image.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import netns_unavailable_reason, skip_or_fail
from .podman import (
    IMAGE,
    OWNER_LABEL,
    MissingTool,
    Podman,
    PodmanError,
    build_image,
    build_lock,
    ensure_base_image,
    missing_tools,
    required_tools,
)


def _problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root (rootful Podman, network namespaces)"
    missing = missing_tools([*required_tools(), "ip", "nft"])
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install podman runc debootstrap)"
    return netns_unavailable_reason()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    problem = _problem()
    if problem is not None:
        skip_or_fail(problem)
    tool = Podman.in_dir(tmp_path_factory.mktemp("podman"))
    info = tool.run("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
    if info.returncode != 0:
        skip_or_fail(f"podman does not work here: {info.stderr.strip()[-500:]}")
    tool.remove_stale()
    return tool


@dataclass(frozen=True)
class BuiltImage:
    name: str
    base: str  # "cached" or "debootstrapped"
    build_seconds: float


@pytest.fixture(scope="session")
def kernlb_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """docker/Dockerfile built by Podman (layers cached between runs)."""
    workdir = tmp_path_factory.mktemp("image")
    with build_lock():
        try:
            base = ensure_base_image(podman, workdir)
        except MissingTool as exc:
            skip_or_fail(str(exc))
        except PodmanError as exc:
            pytest.fail(str(exc))
        try:
            seconds = build_image(podman, workdir / "build.log")
        except PodmanError as exc:
            pytest.fail(str(exc))
    print(f"\nkernlb image: base image {base}, podman build {seconds:.1f} s")
    return BuiltImage(IMAGE, base, seconds)


@pytest.fixture
def volume(podman: Podman) -> Iterator[str]:
    """A named volume for /var/lib/kernlb, removed afterwards."""
    name = f"kernlb-test-{uuid.uuid4().hex[:8]}"
    podman.run("volume", "create", "--label", f"{OWNER_LABEL}={os.getpid()}", name)
    try:
        yield name
    finally:
        podman.run("volume", "rm", "-f", name, check=False)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "kernlb.env"
    path.write_text(f"KERNLB_ZAPI_KEY={uuid.uuid4().hex}\n")
    return path
