"""Run Python callables inside a network namespace, from the pytest process.

The executor lives in the lab module (:mod:`app.net.lab`), shared with `kernlb demo` and
`bench/`; this module keeps the names the tests import.
"""

from __future__ import annotations

from app.net.lab import NetnsExecutor, current_netns, enter_netns

__all__ = ["NetnsExecutor", "current_netns", "enter_netns"]
