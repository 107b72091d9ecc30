"""A kernlb server that can be killed and restarted fast: imports once, forks per start.

Run inside a namespace.  Each line "start" on stdin forks a child that runs `kernlb serve`
(the real app, real libnftables, real SQLite); the child's PID is printed, and the test kills
it with SIGKILL.  Forking after the imports makes a restart cost the start-up work only
(migrations check, full sync, listen), not the ~1 s of Python imports.
"""

from __future__ import annotations

import os
import signal
import sys

import uvicorn

import app.main  # noqa: F401  (imported before forking: the children share it)
from app.settings import Settings


def serve(settings: Settings) -> None:
    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        workers=1,
        access_log=False,
    )


def main() -> int:
    db, state_dir, port, key = sys.argv[1:5]
    settings = Settings(
        host="127.0.0.1",
        port=int(port),
        db=db,
        state_dir=state_dir,
        zapi_key=key,
        tls=False,
        resync_interval=0,
        load_interval=0,
        vip_check=False,
        ip_forward=False,
    )
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped at once
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                serve(settings)
            finally:
                os._exit(0)
        print(pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
