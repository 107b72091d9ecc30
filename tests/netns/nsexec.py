"""Run Python callables inside a network namespace, from the pytest process.

Each worker thread of a :class:`NetnsExecutor` calls ``setns(2)`` on start, so sockets created by
the callables it runs belong to that namespace (a socket keeps its namespace for its lifetime,
whichever thread uses it later). The pytest main thread never changes namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from app.net.netns import enter_netns as _enter_netns

P = ParamSpec("P")
T = TypeVar("T")

_current = threading.local()


def enter_netns(name: str) -> None:
    """Move the calling thread into the named network namespace (and remember which)."""
    _enter_netns(name)
    _current.name = name


def current_netns() -> str | None:
    """Name of the namespace this thread entered through :func:`enter_netns`, if any."""
    name: str | None = getattr(_current, "name", None)
    return name


class NetnsExecutor:
    """A thread pool whose workers all live in one network namespace."""

    def __init__(self, netns: str, *, workers: int = 1) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=f"ns-{netns}",
            initializer=enter_netns,
            initargs=(netns,),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self._pool.submit(fn, *args, **kwargs)

    def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in the namespace and return its result (exceptions propagate)."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def map_all(self, fns: Iterable[Callable[[], T]], *, timeout: float) -> list[T]:
        """Run zero-argument callables concurrently; results in submission order."""
        futures = [self._pool.submit(fn) for fn in fns]
        return [f.result(timeout=timeout) for f in futures]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> NetnsExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
