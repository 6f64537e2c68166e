"""Fixtures of the browser tests: the web app on a live uvicorn, and headless Chromium devices.

Each test gets its own server (a free port) and browser profiles, which are closed however it ends.
Without Chromium and chromedriver (``scripts/setup-system`` installs them) a test is skipped, and
in CI (``CI`` set) it fails.
"""

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fastapi import FastAPI

from examples.webapp.app import create_app
from tests.e2e.device import CHROMEDRIVER, CHROMIUM, Device
from tests.support import FakeClock, settings
from tests.support.live_server import live_server
from tests.tls_certs import make_tls_files

ROOT = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI a skipped browser test is a failure; .ci/run runs scripts/setup-system)")
    pytest.skip(f"{reason}; scripts/setup-system installs it")


@pytest.fixture(scope="session")
def chromium() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            _unavailable(f"{path} is not installed")


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``WEBAPP_SCREENSHOTS`` (e.g. ``docs/img``, relative to the repository) if set, else a temporary directory."""
    wanted = os.environ.get("WEBAPP_SCREENSHOTS")
    if not wanted:
        return tmp_path_factory.mktemp("screenshots")
    directory = ROOT / wanted
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class WebApp:
    """The web app served by a live uvicorn: its URL, the app, and the clock its sessions run on."""

    url: str
    app: FastAPI
    clock: FakeClock


def _serve(tls_dir: Path | None = None) -> Iterator[WebApp]:
    clock = FakeClock(time.time())  # starts now: the pages show real times, and the test can age a login
    app = create_app(settings=settings(https_only=tls_dir is not None), clock=clock)
    options: dict[str, Any] = {}
    if tls_dir is not None:
        files = make_tls_files(tls_dir)
        options = {"ssl_certfile": str(files.server_cert), "ssl_keyfile": str(files.server_key)}
    with live_server(app, **options) as url:
        yield WebApp(url, app, clock)


@pytest.fixture
def webapp() -> Iterator[WebApp]:
    """The web app over plain http (``https_only`` off, so the cookie is ``session`` without Secure)."""
    yield from _serve()


@pytest.fixture
def https_webapp(tmp_path: Path) -> Iterator[WebApp]:
    """The web app over https with a self-signed certificate, on the default settings (``__Host-session``, Secure)."""
    yield from _serve(tmp_path / "tls")


@pytest.fixture
def device(chromium: None, screenshots: Path) -> Iterator[Callable[..., Device]]:
    """Opens browsers (``device(base_url, user_agent=..., tls=...)``); all are closed after the test."""
    with contextlib.ExitStack() as opened:

        def open_device(base_url: str, *, user_agent: str | None = None, tls: bool = False) -> Device:
            browser = Device(base_url, screenshots, user_agent=user_agent, tls=tls)
            opened.callback(browser.quit)
            return browser

        yield open_device
