"""`kernlb demo` as a newcomer runs it: the whole story, then nothing left behind.

The demo builds its own namespaces (not the test topology); these tests only need the
`netns_capable` check and look at what it prints and what it leaves.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.demo import PREFIX, netns_names, remove_stale_labs
from app.demo_cluster import cluster_problem

from ..conftest import postgres_unavailable_reason, skip_or_fail

pytestmark = pytest.mark.netns

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUND_TITLE = re.compile(r"^  (\d+) connections (.*):$")
ROUND_LINE = re.compile(r"^    (web\d|failed)\s+(\d+)\s+\d+%")
KERNLB_PID = re.compile(r"kernlb \(pid (\d+)\) answers")


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", "demo", "--no-pause", *args]


def rounds(output: str) -> list[tuple[str, dict[str, int]]]:
    """Each traffic round the demo printed: its title and the count per backend/failed."""
    found: list[tuple[str, dict[str, int]]] = []
    for line in output.splitlines():
        title = ROUND_TITLE.match(line)
        if title:
            found.append((title.group(2), {}))
            continue
        row = ROUND_LINE.match(line)
        if row and found:
            found[-1][1][row.group(1)] = int(row.group(2))
    return found


def lab_namespaces(pid: int) -> list[str]:
    return [name for name in netns_names() if name.startswith(f"{PREFIX}{pid}-")]


def running_kernlb(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"serve" in cmdline


def read_until(proc: subprocess.Popen[str], marker: str, *, timeout: float) -> str:
    """Read the demo's stdout until `marker` appears (bounded)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"no {marker!r} in the demo's output: {seen}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            seen += proc.stdout.readline()
    return seen


@contextlib.contextmanager
def demo(*args: str, stderr: int = subprocess.STDOUT) -> Iterator[subprocess.Popen[str]]:
    """The demo as a child process; killed by PID if the test leaves it running."""
    proc = subprocess.Popen(
        demo_command(*args),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class Story:
    """A whole run of the demo, started at once and read to its end when a test asks."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            demo_command(*args),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._result: subprocess.CompletedProcess[str] | None = None

    def result(self) -> subprocess.CompletedProcess[str]:
        if self._result is None:
            out, err = self.proc.communicate(timeout=240)
            print(out, err)
            self._result = subprocess.CompletedProcess(
                self.proc.args, self.proc.returncode, out, err
            )
        return self._result

    def close(self) -> None:
        """Kill it by PID if no test read it to its end."""
        if self._result is not None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


def run_demo(*args: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run the demo to its end; its PID (which names its namespaces) and its result."""
    story = Story(*args)
    try:
        return story.proc.pid, story.result()
    finally:
        story.close()


@pytest.fixture(scope="module")
def stories(netns_capable: None) -> Iterator[dict[str, Story]]:
    """The two whole runs of the demo (with and without health checks), started together when
    the module starts: each mostly waits (backends starting, health-check intervals), so the
    tests below run while they do, and each story test reads the output of its run."""
    runs = {
        "health checks": Story("--connections", "60"),
        "no health checks": Story("--connections", "60", "--no-health-checks"),
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            run.close()


# The interrupted runs come first: the two whole stories (`stories`) run meanwhile.


def test_ctrl_c_stops_everything(stories: dict[str, Story]) -> None:
    with demo("--connections", "2000") as proc:
        seen = read_until(proc, "[3/6]", timeout=90)
        assert lab_namespaces(proc.pid), "the lab should exist while the demo runs"
        os.kill(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    output = seen + rest
    print(output)
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert lab_namespaces(proc.pid) == []
    kernlb = KERNLB_PID.search(output)
    assert kernlb is not None
    assert not running_kernlb(int(kernlb.group(1)))


def test_a_killed_demo_takes_its_processes_along_and_the_next_removes_its_lab(
    stories: dict[str, Story],
) -> None:
    with demo("--connections", "2000") as proc:
        seen = read_until(proc, "[3/6]", timeout=90)
        kernlb = KERNLB_PID.search(seen)
        assert kernlb is not None, seen
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean anything up
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while running_kernlb(int(kernlb.group(1))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running_kernlb(int(kernlb.group(1))), "kernlb outlived the demo"
    left = lab_namespaces(proc.pid)
    assert left, "expected the killed demo's namespaces to remain"
    assert sorted(remove_stale_labs()) == sorted(left)
    assert lab_namespaces(proc.pid) == []


def test_demo_runs_the_story_and_removes_the_lab(stories: dict[str, Story]) -> None:
    run = stories["health checks"]
    pid, proc = run.proc.pid, run.result()
    assert proc.returncode == 0, proc.stderr
    story = rounds(proc.stdout)
    assert len(story) == 5, story
    first, drained, undrained, failed, recovered = (counts for _, counts in story)
    assert sum(first.values()) == 60
    assert all(first.get(name, 0) > 0 for name in ("web1", "web2", "web3")), first
    assert "failed" not in first, first
    assert drained["web1"] == 0 and "failed" not in drained, drained
    assert undrained["web1"] > 0, undrained
    # The health check took web2 out before the round: no client connection failed.
    assert "the health check marked web2 down" in proc.stdout
    assert failed["web2"] == 0 and "failed" not in failed, failed
    assert recovered["web2"] > 0 and "failed" not in recovered, recovered
    assert "namespaces and temporary files deleted" in proc.stdout
    assert lab_namespaces(pid) == []
    kernlb = KERNLB_PID.search(proc.stdout)
    assert kernlb is not None
    assert not running_kernlb(int(kernlb.group(1)))


def test_demo_without_health_checks_shows_failures_until_maintenance(
    stories: dict[str, Story],
) -> None:
    run = stories["no health checks"]
    pid, proc = run.proc.pid, run.result()
    assert proc.returncode == 0, proc.stderr
    assert lab_namespaces(pid) == []
    story = dict(rounds(proc.stdout))
    # P(no connection of 60 reaches web2, weight 1 of 4) = 0.75**60, about 3e-8.
    assert story["with web2 still in rotation"].get("failed", 0) > 0, story
    in_maintenance = story["with web2 in maintenance"]
    assert in_maintenance["web2"] == 0 and "failed" not in in_maintenance, story
    assert story["with web2 back"]["web2"] > 0, story


TAKEOVER = re.compile(r"^  VIP moved to lb2 in (\d+\.\d+) s$", re.M)
HELD = re.compile(r"^  held connections: (\d+)/(\d+) still exchanging data through lb2$", re.M)
NEW_CONNECTIONS = re.compile(r"^  new connections: (\d+) made, (none failed|(\d+) failed)", re.M)
STOPPED = re.compile(r"^  stopped by PID: processes ([\d, ]+); PostgreSQL (\d+)$", re.M)
POSTGRES_DIR = re.compile(r"initdb in (\S+),")


def test_cluster_demo_fails_over_and_keeps_the_held_connections(netns_capable: None) -> None:
    reason = postgres_unavailable_reason() or cluster_problem()
    if reason is not None:
        skip_or_fail(f"kernlb demo --cluster: {reason}")
    pid, proc = run_demo("--cluster", "--held", "20")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    takeover, held = TAKEOVER.search(out), HELD.search(out)
    assert takeover is not None and held is not None, out
    assert float(takeover.group(1)) <= 3.0
    assert held.groups() == ("20", "20")
    made = NEW_CONNECTIONS.search(out)
    assert made is not None and int(made.group(1)) >= 100, out
    assert "lb2 applied revision" in out
    # Everything it started is gone: processes (by PID), namespaces, PostgreSQL's directory.
    stopped = STOPPED.search(out)
    assert stopped is not None, out
    pids = [int(p) for p in stopped.group(1).split(", ")] + [int(stopped.group(2))]
    assert len(pids) >= 7  # 2 backends, 2x conntrackd, keepalived, kernlb on lb2; PostgreSQL
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and running_ours(p)]
    assert lab_namespaces(pid) == []
    postgres_dir = POSTGRES_DIR.search(out)
    assert postgres_dir is not None and not Path(postgres_dir.group(1)).exists()


def running_ours(pid: int) -> bool:
    """Is `pid` one of the demo's programs (not a PID reused by someone else)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return any(name in cmdline for name in (b"keepalived", b"conntrackd", b"serve", b"postgres",
                                            b"backend_server"))  # fmt: skip
