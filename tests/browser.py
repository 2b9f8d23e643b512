"""One harness for the tests that run the dashboard in uvicorn and drive it with Chromium.

Every browser test needs the same three things: a free loopback port,
``kizuna dashboard`` started on a workspace and waited for, and Debian's
Chromium launched through Playwright with the flags that keep it off the
network (see ../shared/NOTES.md). They live here once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

# The tests drive the browser the product prints its PDF reports with.
from kizuna.reports.monthly import CHROMIUM, CHROMIUM_ARGS

#: Marks for a module of browser tests: skipped, with the reason, without Chromium.
REQUIRES_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dashboard(workspace: Path, log_dir: Path, startup_seconds: float = 90) -> Iterator[str]:
    """``kizuna dashboard`` on a loopback port for ``workspace``; yields its base URL.

    The server gets a clean environment (no ``KIZUNA_*`` of the test run, so
    it reads the workspace's own settings) and its output goes to
    ``log_dir/server.log``, which a failed start raises with. A loaded CI
    machine starts uvicorn slowly, hence the generous wait.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    port = free_port()
    kizuna = shutil.which("kizuna", path=str(Path(sys.executable).parent)) or "kizuna"
    log_path = log_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [kizuna, "-w", str(workspace), "dashboard", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_seconds
            while True:
                try:
                    if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text(errors="replace"))
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright driving the Debian binary; never downloaded)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def guarded_page(browser: Any, allow_failed_loads: bool = True, **options: Any) -> Iterator[Any]:
    """A page that may only reach 127.0.0.1 and must not log a script error.

    Every request to another host is aborted and recorded; page errors and
    console errors are recorded; both lists must be empty when the block
    ends. ``allow_failed_loads`` tolerates the browser's own "Failed to load
    resource" lines (a refused outside request logs one).
    """
    context = browser.new_context(**options)
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname != "127.0.0.1" and not url.startswith(("data:", "blob:")):
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    def console(message: Any) -> None:
        if message.type != "error":
            return
        if allow_failed_loads and message.text.startswith("Failed to load resource"):
            return
        errors.append(message.text)

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", console)
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
    assert outside == [], f"the pages requested other hosts: {outside}"
    assert errors == [], f"the pages logged errors: {errors}"
