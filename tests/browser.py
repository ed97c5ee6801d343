"""Browser tests in Debian's headless Chromium, driven by Playwright: fixtures and a local server.

Playwright drives the system browser through `executable_path` and never downloads one. Register the
fixtures with `pytest_plugins = ["tests.browser"]` in tests/conftest.py; importing them into a test
module instead (`from tests.browser import browser, page  # noqa: F401`) also works, but ruff then
flags each test's `page` argument as F811, a redefinition of the import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
# As root in a container: no user namespaces for the sandbox, a small /dev/shm, no GPU.
ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
STARTUP_SECONDS = 30.0


def chromium() -> Path:
    """The Chromium binary to drive: `DUALSCREEN_CHROMIUM` if set, else Debian's."""
    return Path(os.environ.get("DUALSCREEN_CHROMIUM") or CHROMIUM)


def unavailable() -> str | None:
    """Why browser tests cannot run here (Chromium or Playwright missing), or None when they can."""
    binary = chromium()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return (
            f"no Chromium at {binary}: `apt-get install --no-install-recommends chromium`, "
            "or set DUALSCREEN_CHROMIUM to a Chromium binary"
        )
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed: `.venv/bin/pip install -e '.[dev]'`"
    return None


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


# Module scope, not session: while Playwright's sync API is started it marks its asyncio loop as
# running in the main thread, so asyncio.run() and @pytest.mark.anyio tests fail until it stops.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for one test module; skipped where unavailable, a failure on CI."""
    reason = unavailable()
    if reason is not None:
        if _on_ci():
            pytest.fail(f"browser tests cannot run on CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no shared cookies or storage), 1366x900."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@contextlib.contextmanager
def serve(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 in a background thread; yield its base URL."""
    # Binding here, before uvicorn starts, means no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    host, bound = sock.getsockname()
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{bound}", daemon=True)
    thread.start()
    try:
        # `started` is set once the socket listens and the app's lifespan startup has finished.
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on {host}:{bound}: see the log above (lifespan startup?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {host}:{bound} within {STARTUP_SECONDS:.0f} s")
            time.sleep(0.01)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()
