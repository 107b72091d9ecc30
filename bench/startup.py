#!/usr/bin/env python3
"""Start-up cost of kernlb's commands: `kernlb serve` until its API answers, and one-shot CLI
commands (`kernlb sync`, `kernlb sync --help`, the bare import of the app).

Not a test: it prints a table (and writes JSON with ``--json``).  Run as root from the
repository root:

    .venv/bin/python bench/startup.py                        # 5 rounds of this tree
    .venv/bin/python bench/startup.py --src /tmp/old --src . # two trees, interleaved

Every round starts, for each source tree in turn, a fresh ``kernlb serve --no-tls`` (new
SQLite file: the migration is part of it, as for a namespace test's server) inside a namespace
of its own, then again on the same database (a restart: the database is at head), and records
the wall time from the spawn to the first answer of
``GET /system/version`` and the server's CPU (utime + stime of every thread, ``/proc/PID/stat``)
at that moment; then each one-shot command, with its CPU from the kernel's accounting of the
reaped child.  Trees are interleaved round by round, so a busy neighbour on a shared machine
weighs on all of them alike.  Medians are printed (and the spread).

Everything happens inside a namespace named ``ksu<pid>``, deleted at the end; processes are
stopped by their PID.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.net.lab import Lab, kernlb_serve_argv, ns_exec  # noqa: E402

KEY = "startupbench0123"
PORT = 8446
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """utime + stime of a live process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def answers(url: str) -> bool:
    request = urllib.request.Request(url, headers={"ZAPI_KEY": KEY})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def serve_once(lab: Lab, ns: str, src: Path, workdir: Path) -> tuple[float, float]:
    """(wall seconds to the first answer, server CPU seconds by then)."""
    argv = kernlb_serve_argv(
        port=PORT, db=workdir / "kernlb.db", state_dir=workdir, resync_interval=2, key=KEY
    )
    pool = lab.executor(ns)
    url = f"http://127.0.0.1:{PORT}/zapi/v3.1/zapi.cgi/system/version"
    started = time.monotonic()
    proc = lab.spawn(ns, argv, log=workdir / "kernlb.log", cwd=src)
    try:
        deadline = started + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kernlb exited ({proc.returncode}): see {workdir}/kernlb.log")
            if pool.run(answers, url):
                return time.monotonic() - started, process_cpu(proc.pid)
            time.sleep(0.01)
        raise RuntimeError(f"kernlb not ready after 60 s: see {workdir}/kernlb.log")
    finally:
        lab.stop(proc)


def command_cpu(ns: str, src: Path, argv: list[str]) -> float:
    """CPU seconds (user + sys) of one command run to its end inside ``ns``."""
    proc = subprocess.Popen(
        ns_exec(ns, sys.executable, *argv),
        cwd=src,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise RuntimeError(f"{argv} failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src", action="append", type=Path, help="source tree (repeatable; default: this one)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    sources = [path.resolve() for path in (args.src or [REPO])]
    results: dict[str, dict[str, list[float]]] = {str(src): {} for src in sources}
    lab = Lab()
    try:
        ns = lab.add_netns(f"ksu{os.getpid()}")
        with tempfile.TemporaryDirectory(prefix=f"kernlb-startup-{os.getpid()}-") as tmp:
            for round_ in range(args.rounds):
                for index, src in enumerate(sources):
                    work = Path(tmp) / f"{round_}-{index}"
                    work.mkdir()
                    db = f"sqlite:///{work}/sync.db"
                    figures = results[str(src)]
                    for state in ("new db", "restart"):
                        wall, cpu = serve_once(lab, ns, src, work)
                        figures.setdefault(f"serve ({state}): wall to ready", []).append(wall)
                        figures.setdefault(f"serve ({state}): CPU to ready", []).append(cpu)
                    for label, argv in (
                        ("import app.main, app.cli: CPU", ["-c", "import app.main, app.cli"]),
                        ("kernlb sync --help: CPU", ["-m", "app", "sync", "--help"]),
                        ("kernlb sync (new db): CPU", ["-m", "app", "sync", "--db", db]),
                        ("kernlb sync (at head): CPU", ["-m", "app", "sync", "--db", db]),
                    ):
                        figures.setdefault(label, []).append(command_cpu(ns, src, argv))
    finally:
        lab.close()
    labels = list(next(iter(results.values())))
    width = max(len(label) for label in labels)
    print(f"{'median s (min-max)':<{width}}  " + "  ".join(str(src) for src in sources))
    for label in labels:
        cells = []
        for src in sources:
            values = results[str(src)][label]
            cells.append(f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})")
        print(f"{label:<{width}}  " + "  ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
