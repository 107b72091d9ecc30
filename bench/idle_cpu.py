#!/usr/bin/env python3
"""Idle CPU of the kernlb daemon: seconds of CPU per minute while nothing changes.

Not a test: it prints a table (and writes JSON with ``--json``).  Run as root from the
repository root (see bench/README.md):

    .venv/bin/python bench/idle_cpu.py                      # 1 and 10,000 farms, 60 s each
    .venv/bin/python bench/idle_cpu.py --farms 10000 --duration 120 --resync-interval 30

For every size N a database with N farms (``tcp``, one VIP each, port 80, ``weight``, 2
backends; the rows the API would have stored, written as bench/controlplane.py does) is given
to ``kernlb serve`` in a namespace of its own; once its API answers and ``--settle`` seconds
have passed (start-up work done, the first drift check and load rounds run), the server's
utime + stime (``/proc/PID/stat``, every thread) is read at the start and the end of
``--duration`` seconds.  Per-thread figures show where the time went.  ``--mix`` adds, among
the N farms, a few that do need periodic work (a leastconn farm, a max_conns backend, a farm
with farmguardian) to show that only those cost anything.

Everything happens inside namespaces named ``ki<pid>...``, deleted at the end (and on Ctrl-C /
SIGTERM); the server is stopped by its PID.  Addresses are taken from 198.18.0.0/15.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KEY = "benchkey0123456789"
PORT = 8445
ZAPI = "/zapi/v3.1/zapi.cgi"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The database filler and the lab of bench/controlplane.py (one way to make farms for benches).
controlplane = _load("_kernlb_controlplane", REPO / "bench" / "controlplane.py")
lab = controlplane.lab


@dataclass
class Sample:
    """utime + stime of a process and of each of its threads, in clock ticks."""

    total: int
    threads: dict[str, int] = field(default_factory=dict)


def _ticks(stat_path: Path) -> tuple[str, int]:
    text = stat_path.read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[11], fields[12]: utime, stime (fields 14 and 15 of proc(5), counted from 1)
    return name, int(fields[11]) + int(fields[12])


def sample(pid: int) -> Sample:
    _, total = _ticks(Path(f"/proc/{pid}/stat"))
    threads: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name, ticks = _ticks(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        key = f"{name}[{task.name}]"
        threads[key] = ticks
    return Sample(total, threads)


NEEDY = {
    "leastconn": ("UPDATE farm SET algorithm = 'leastconn' WHERE id = 1", "farm 1 leastconn"),
    "max_conns": ("UPDATE backend SET max_conns = 100 WHERE farm_id = 2", "farm 2 max_conns 100"),
    "fg": (
        "UPDATE farm SET fg_enabled = 1, fg_timecheck = 5, "
        "fg_script = 'check_tcp -H HOST -p PORT' WHERE id = 3",
        "farm 3 farmguardian check_tcp every 5 s",
    ),
}


def add_needy_farms(db: Path, n: int, kinds: list[str]) -> list[str]:
    """Turn some of the N farms into farms that need periodic work (leastconn, max_conns,
    farmguardian); returns their descriptions."""
    if n < 3:
        return []
    con = sqlite3.connect(db)
    try:
        for kind in kinds:
            con.execute(NEEDY[kind][0])
        con.commit()
    finally:
        con.close()
    return [NEEDY[kind][1] for kind in kinds]


@dataclass
class Result:
    farms: int
    startup_s: float = 0.0
    seconds: float = 0.0
    cpu_s: float = 0.0
    per_thread: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        return self.cpu_s * 60.0 / self.seconds if self.seconds else 0.0


def measure(res: Any, work: Path, n: int, args: argparse.Namespace, log: Any) -> Result:
    result = Result(farms=n)
    db = work / f"idle-{n}.db"
    state = work / f"idle-state-{n}"
    state.mkdir(exist_ok=True)
    controlplane.populate_kernlb(db, n)
    if args.mix:
        result.notes = add_needy_farms(db, n, args.mix.split(","))
    ns = res.new_ns("i")
    client = res.executor(ns)
    try:
        argv = lab.kernlb_serve_argv(
            port=PORT,
            db=db,
            state_dir=state,
            resync_interval=args.resync_interval,
            key=KEY,
            extra=["--no-vip-check"],
        )
        env = dict(os.environ)
        if args.load_interval is not None:
            env["KERNLB_LOAD_INTERVAL"] = str(args.load_interval)
        started = time.perf_counter()
        proc = res.spawn(ns, argv, log=work / f"idle-serve-{n}.log")
        headers = {"ZAPI_KEY": KEY}
        deadline = time.monotonic() + args.load_timeout
        if not controlplane.wait_answer(
            client, PORT, f"{ZAPI}/system/version", headers, deadline=deadline, proc=proc
        ):
            raise RuntimeError(f"kernlb serve did not answer (log: {work}/idle-serve-{n}.log)")
        result.startup_s = time.perf_counter() - started
        log(f"N={n}: serve answered after {result.startup_s:.2f} s; settling {args.settle:g} s")
        time.sleep(args.settle)
        first = sample(proc.pid)
        t0 = time.monotonic()
        time.sleep(args.duration)
        last = sample(proc.pid)
        result.seconds = time.monotonic() - t0
        if proc.poll() is not None:
            raise RuntimeError("kernlb serve exited during the measurement")
        result.cpu_s = (last.total - first.total) / CLOCK_TICKS
        for name, ticks in last.threads.items():
            spent = (ticks - first.threads.get(name, 0)) / CLOCK_TICKS
            if spent > 0:
                result.per_thread[name] = spent
        log(f"N={n}: {result.cpu_s:.2f} s CPU in {result.seconds:.1f} s")
    finally:
        client.shutdown()
        res.del_ns(ns)
    return result


def report(results: list[Result], args: argparse.Namespace, loadavg: tuple[float, float]) -> str:
    lines = [
        f"kernlb serve at rest: CPU (utime + stime, all threads) over {args.duration:g} s, "
        f"after start-up + {args.settle:g} s; drift check every {args.resync_interval:g} s.",
        "",
        f"{'farms':>7}  {'start-up':>9}  {'CPU s / min':>11}  busiest threads (s in the window)",
        f"{'-' * 7}  {'-' * 9}  {'-' * 11}  {'-' * 40}",
    ]
    for r in results:
        busiest = sorted(r.per_thread.items(), key=lambda kv: -kv[1])[:3]
        threads = ", ".join(f"{name} {spent:.2f}" for name, spent in busiest) or "-"
        lines.append(f"{r.farms:>7,}  {r.startup_s:>7.2f} s  {r.per_minute:>11.3f}  {threads}")
        for note in r.notes:
            lines.append(f"{'':>7}  ({note})")
    lines.append("")
    lines.append(
        f"Machine: {os.cpu_count()} CPUs, load average {loadavg[0]:.2f} at start, "
        f"{loadavg[1]:.2f} at end."
    )
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    if not sizes or any(s < 1 or s > 60_000 for s in sizes):
        raise argparse.ArgumentTypeError("farm counts must be between 1 and 60000")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--farms", type=parse_sizes, default=[1, 10_000], help="1,10000")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (60)")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds after the API answers (10)"
    )
    parser.add_argument(
        "--resync-interval", type=int, default=30, help="server's drift-check interval (30)"
    )
    parser.add_argument(
        "--load-interval", type=float, help="server's load interval (its default: 2)"
    )
    parser.add_argument(
        "--mix",
        nargs="?",
        const="leastconn,max_conns,fg",
        help="make some farms need periodic work: leastconn,max_conns,fg (all when no value)",
    )
    parser.add_argument("--load-timeout", type=float, default=300.0, help="start-up limit (300)")
    parser.add_argument("--workdir", type=Path, help="keep databases and server logs here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.geteuid() != 0:
        print("idle_cpu.py: run as root (network namespaces)", file=sys.stderr)
        return 2
    if args.load_interval is not None:
        os.environ["KERNLB_LOAD_INTERVAL"] = str(args.load_interval)  # inherited by the server

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    res = controlplane.Resources()
    res.prefix = f"ki{os.getpid()}"
    tmp = None
    if args.workdir is not None:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kernlb-idle-")
        work = Path(tmp.name)
    results: list[Result] = []
    load_start = os.getloadavg()[0]
    try:
        with controlplane.signals_as_exceptions():
            for n in args.farms:
                results.append(measure(res, work, n, args, log))
    except (KeyboardInterrupt, controlplane.Interrupted) as exc:
        log(f"interrupted ({type(exc).__name__} {exc}); cleaning up")
    finally:
        res.cleanup()
        loadavg = (load_start, os.getloadavg()[0])
        if results:
            print(report(results, args, loadavg))
        if args.json is not None:
            payload = {
                "settings": {
                    "duration_s": args.duration,
                    "settle_s": args.settle,
                    "resync_interval_s": args.resync_interval,
                    "mix": args.mix,
                },
                "loadavg_start_end": loadavg,
                "results": [
                    {
                        "farms": r.farms,
                        "startup_s": r.startup_s,
                        "seconds": r.seconds,
                        "cpu_s": r.cpu_s,
                        "cpu_s_per_minute": r.per_minute,
                        "per_thread_s": r.per_thread,
                        "notes": r.notes,
                    }
                    for r in results
                ],
            }
            args.json.write_text(json.dumps(payload, indent=1) + "\n")
        if tmp is not None:
            tmp.cleanup()
    return 0 if len(results) == len(args.farms) else 1


if __name__ == "__main__":
    sys.exit(main())
