"""Headless Chromium (Debian's, through its chromedriver) inside a test network namespace.

The Selenium client talks HTTP to chromedriver on loopback, and chromedriver to Chromium:
all three must share a namespace. So a :class:`Browser` lives in one thread that entered the
LB namespace (``NetnsExecutor``) and is used only from there: the test runs its browser steps
with ``browser.run(fn)``. chromedriver is started through ``ip netns exec`` as well, so nothing
listens in the root namespace. See shared/spec/browser-notes.md for the launch options.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .nsexec import NetnsExecutor, current_netns

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 800)
PHONE = (390, 844)

T = TypeVar("T")


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian package {package}; scripts/setup.sh --test)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is missing (pip install -e '.[dev]')"
    return None


class Browser:
    """One headless Chromium tab; every method must run in the namespace's thread."""

    def __init__(self, netns: str, workdir: Path, artefacts: Path) -> None:
        self.netns = netns
        self.workdir = workdir
        self.artefacts = artefacts
        self.executor = NetnsExecutor(netns, workers=1)
        self.driver: Any = None

    # -- lifecycle (called from the pytest thread) ---------------------------------------

    def start(self) -> None:
        self.executor.run(self._start)

    def close(self) -> None:
        try:
            if self.driver is not None:
                self.executor.run(self.driver.quit)
        finally:
            self.executor.shutdown()

    def run(self, fn: Callable[[Browser], T]) -> T:
        """Run ``fn(self)`` in the namespace's thread (assertion errors propagate)."""
        return self.executor.run(fn, self)

    def _start(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        assert current_netns() == self.netns
        # chromedriver (and the Chromium it starts) in the namespace, explicitly.
        wrapper = self.workdir / "chromedriver-in-netns"
        wrapper.write_text(
            f'#!/bin/sh\nexec ip netns exec {self.netns} {CHROMEDRIVER} "$@"\n', encoding="utf-8"
        )
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        profile = self.workdir / "chromium-profile"
        profile.mkdir(exist_ok=True)
        options = Options()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # mandatory as root
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1280,800",
            "--disable-gpu",
            "--no-first-run",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        log = self.workdir / "chromedriver.log"
        service = Service(executable_path=str(wrapper), log_output=str(log))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(20)
        self.viewport(*DESKTOP)

    # -- helpers (namespace thread) -------------------------------------------------------

    def viewport(self, width: int, height: int) -> None:
        """Exact CSS viewport (a headless window's size is not its viewport)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def wait(self, timeout: float = 10.0) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05)

    def visible(self, css: str, timeout: float = 10.0) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def gone(self, css: str, timeout: float = 10.0) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait(timeout).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, css)))

    def text_of(self, css: str, expected: str, timeout: float = 10.0) -> None:
        """Wait until the element's visible text is exactly ``expected``."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By

        def matches(driver: Any) -> bool:
            try:
                return bool(driver.find_element(By.CSS_SELECTOR, css).text == expected)
            except Exception:  # not there yet, or replaced while read (stale)
                return False

        try:
            self.wait(timeout).until(matches)
        except TimeoutException:
            actual = self.js(
                "const e = document.querySelector(arguments[0]); return e && e.innerText", css
            )
            raise AssertionError(f"{css}: expected text {expected!r}, got {actual!r}") from None

    def click(self, css: str) -> None:
        self.visible(css).click()

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def shot(self, name: str, size: tuple[int, int] = DESKTOP, *, full: bool = False) -> Path:
        """Screenshot at ``size`` (``full``: the whole page at that width) into artefacts."""
        self.viewport(*size)
        if full:
            self.viewport(size[0], int(self.js("return document.documentElement.scrollHeight")))
        path = self.artefacts / f"{name}.png"
        # Notifications of earlier steps would cover the page: the picture shows the page.
        self.js("document.getElementById('toasts').hidden = true")
        self.driver.save_screenshot(str(path))
        self.js("document.getElementById('toasts').hidden = false")
        if size != DESKTOP or full:
            self.viewport(*DESKTOP)
        return path

    def console(self) -> list[dict[str, Any]]:
        """Browser log entries since the last call (the call drains the buffer)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return entries


def javascript_errors(entries: list[dict[str, Any]], origin: str) -> list[str]:
    """SEVERE entries that are script errors, CSP violations or failed loads of GUI files.

    A ZAPI answer with a 4xx status (a wrong key, a rejected value: the test provokes them) is
    logged by Chromium as a failed resource load; it is expected, the rest is not."""
    errors = []
    for entry in entries:
        if entry.get("level") != "SEVERE":
            continue
        message = str(entry.get("message", ""))
        if entry.get("source") == "network" and message.startswith(f"{origin}/zapi/"):
            continue
        errors.append(f"{entry.get('source')}: {message}")
    return errors


def artefacts_dir(default: Path) -> Path:
    """KERNLB_ARTEFACTS (CI keeps it), else ``default``; screenshots go to its gui/."""
    root = Path(os.environ.get("KERNLB_ARTEFACTS", str(default)))
    path = root / "gui"
    path.mkdir(parents=True, exist_ok=True)
    return path
