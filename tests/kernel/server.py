"""`kernlb serve` (plain HTTP on 127.0.0.1) in a scratch namespace, for transport-level tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.net.lab import Process, kernlb_serve_argv
from tests.kernel.netns import run_in, scratch_namespace
from tests.netns.kernlb import start_app
from tests.netns.nsexec import NetnsExecutor
from tests.netns.topology import stop_process

PORT = 8444
KEY = "ServerTestKey123"


@contextmanager
def kernlb_in_scratch_namespace(
    workdir: Path, *extra: str
) -> Iterator[tuple[Process, NetnsExecutor]]:
    with scratch_namespace() as ns:
        assert run_in(ns, "ip", "link", "set", "lo", "up").returncode == 0
        argv = kernlb_serve_argv(
            port=PORT,
            db=workdir / "kernlb.db",
            state_dir=workdir,
            resync_interval=0,
            key=KEY,
            extra=extra,
        )
        log = workdir / "kernlb.log"
        proc = start_app(ns, argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, log=log)
        executor = NetnsExecutor(ns, workers=48)
        try:
            deadline = time.monotonic() + 30
            while not executor.run(_listening):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "kernlb did not start"
                time.sleep(0.1)
            yield proc, executor
        finally:
            stop_process(proc)
            executor.shutdown()


def _listening() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=1):
            return True
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
