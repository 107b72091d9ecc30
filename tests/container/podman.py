"""Podman, as the container tests drive it: the image build recipe of issue 7.

No Docker engine runs on these machines and no image registry is reachable, so:

- the base image ``docker.io/library/debian:bookworm-slim`` is made locally with
  ``debootstrap --variant=minbase bookworm`` and ``podman import`` when it is not in Podman's
  storage yet (it stays there: later runs reuse it);
- the image is built with ``podman build --isolation=chroot --pull=never --format docker``
  (the docker format keeps the HEALTHCHECK);
- containers run with ``--runtime runc`` and a containers.conf whose ``default_ulimits`` fit this
  sandbox (Podman's defaults exceed its limits).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.net.lab import file_tail, pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGE = "localhost/kernlb:test"
BUILD_STAGE_IMAGE = "localhost/kernlb-build:test"
DEBIAN_MIRROR = os.environ.get("KERNLB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
"""
# The official image's sources (debootstrap writes only "bookworm main").
DEBIAN_SOURCES = """\
Types: deb
URIs: {mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
# Containers and volumes made by a test carry the PID of the pytest process that made them, so
# that a later run can remove what a killed run left behind.
OWNER_LABEL = "kernlb.test.pid"
LOCK_PATH = Path("/run/lock/kernlb-container-test.lock")


class PodmanError(subprocess.SubprocessError):
    pass


class MissingTool(PodmanError):
    """A tool the recipe needs is not installed (a reason to skip, outside CI)."""


def required_tools() -> list[str]:
    return ["podman", "runc"]


def missing_tools(tools: Sequence[str]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One base-image creation or image build at a time on this machine."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_PATH.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Podman:
    """``podman`` with this sandbox's containers.conf."""

    conf: Path

    @classmethod
    def in_dir(cls, directory: Path) -> Podman:
        conf = directory / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        return cls(conf)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["podman", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            raise PodmanError(
                f"podman {' '.join(args)} -> rc={proc.returncode}\n"
                f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}"
            )
        return proc

    def image_id(self, name: str) -> str | None:
        proc = self.run("image", "inspect", "--format", "{{.Id}}", name, check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def remove_stale(self) -> None:
        """Remove containers and volumes left by test runs whose process is gone."""
        for kind, list_args in (
            ("container", ["ps", "-a", "--format", "{{.Names}} {{.Labels}}"]),
            ("volume", ["volume", "ls", "--format", "{{.Name}} {{.Labels}}"]),
        ):
            listing = self.run(*list_args, "--filter", f"label={OWNER_LABEL}", check=False)
            for line in listing.stdout.splitlines():
                name, _, labels = line.partition(" ")
                match = re.search(rf"{re.escape(OWNER_LABEL)}:(\d+)", labels)
                if match is None or pid_alive(int(match.group(1))):
                    continue
                if kind == "container":
                    self.run("rm", "-f", "-t", "0", name, check=False)
                else:
                    self.run("volume", "rm", "-f", name, check=False)


def ensure_base_image(podman: Podman, workdir: Path) -> str:
    """The Debian base image: reused from Podman's storage, else debootstrapped and imported."""
    if podman.run("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return "cached"
    if shutil.which("debootstrap") is None:
        raise MissingTool(f"{BASE_IMAGE} is not in Podman's storage and debootstrap is missing")
    rootfs = workdir / "rootfs"
    try:
        boot = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR],
            capture_output=True,
            text=True,
            timeout=1200,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if boot.returncode != 0:
            raise PodmanError(f"debootstrap failed:\n{boot.stdout[-3000:]}\n{boot.stderr[-3000:]}")
        _slim(rootfs)
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                ["podman", "import", "-", BASE_IMAGE],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                timeout=600,
                env=podman.env,
                check=False,
            )
            assert tar.stdout is not None
            tar.stdout.close()
        if tar.returncode != 0 or imported.returncode != 0:
            raise PodmanError(f"podman import failed: {imported.stderr[-3000:]}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return "debootstrapped"


def _slim(rootfs: Path) -> None:
    """Trim the root file system as the official slim image is: no package cache, no lists,
    no documentation or translations (now or from packages installed later)."""
    security = re.sub(r"/debian/?$", "/debian-security", DEBIAN_MIRROR)
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES)
    for pattern in (
        "usr/share/doc/*/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/locale/*",
    ):
        for entry in rootfs.glob(pattern):
            if entry.name in ("copyright", "locale.alias"):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        DEBIAN_SOURCES.format(mirror=DEBIAN_MIRROR, security=security)
    )
    for directory in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / directory).glob("*"):
            if entry.is_file():
                entry.unlink()


def build_args() -> list[str]:
    """Arguments that let pip in the build stage reach PyPI the way this host does."""
    args: list[str] = []
    bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        # The host's trust store (which may include a TLS-intercepting proxy's CA).
        args += ["-v", f"{bundle}:/run/kernlb-build-ca.pem:ro"]
        args += ["--build-arg", "PIP_CERT=/run/kernlb-build-ca.pem"]
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        value = os.environ.get(name, "")
        if value.startswith(("http://", "https://")):
            args += ["--build-arg", f"{name}={value}"]
    return args


def build_image(podman: Podman, log_path: Path) -> float:
    """``podman build`` of docker/Dockerfile as IMAGE; returns the seconds it took.

    The build stage is tagged too (BUILD_STAGE_IMAGE): when a rebuild replaces either image, the
    previous one is removed, so that repeated runs on one machine do not pile up layers.
    """
    started = time.monotonic()
    with log_path.open("w") as log:
        for target, tag in (("build", BUILD_STAGE_IMAGE), (None, IMAGE)):
            previous = podman.image_id(tag)
            cmd = [
                "podman",
                "build",
                "--isolation=chroot",
                "--pull=never",
                "--format",
                "docker",
                "-f",
                "docker/Dockerfile",
                "-t",
                tag,
                *(["--target", target] if target else []),
                *build_args(),
                ".",
            ]
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=podman.env,
                timeout=1800,
                check=False,
            )
            if proc.returncode != 0:
                log.flush()
                tail = file_tail(log_path, 60)
                raise PodmanError(f"podman build failed (rc={proc.returncode}):\n{tail}")
            if previous and previous != podman.image_id(tag):
                podman.run("rmi", previous, check=False)
    return time.monotonic() - started
