"""A production-like deployment, and the same deployment misconfigured as docs/troubleshooting.md describes.

Two uvicorn workers (``--workers 2 --proxy-headers --forwarded-allow-ips=127.0.0.1``) serve
tests/deploy/app.py on a shared store (Redis under a key prefix of the test's own, PostgreSQL in a
table of its own) behind nginx, which terminates TLS with a certificate made here and is configured
by examples/deploy/nginx.conf, the file docs/deployment.md shows. Headless Chromium logs in over
https with the default settings (a ``Secure`` ``__Host-`` cookie) at ``app.test``, a name it
resolves to 127.0.0.1 but treats like any host of the internet.

The misconfigured deployments differ from it in one thing each: uvicorn without the proxy options,
nginx without TLS, and nginx passing ``Host $host``. Each test checks what the user sees and that
the log names the fix.
"""

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.deploy.app import FORM_REFUSED
from tests.deploy.servers import (
    DEADLINE,
    HOSTNAME,
    Nginx,
    Uvicorn,
    chromium,
    replace,
    self_signed_certificate,
    site_config,
    wait_for,
)
from tests.support import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

COOKIE = "__Host-session"
PLAIN_HTTP_WARNING = f"the Secure cookie {COOKIE} was sent over plain http to {HOSTNAME}, where a browser drops it"
PROXY_FIX = "run uvicorn with --proxy-headers --forwarded-allow-ips=<the proxy's address>"


@dataclass
class Site:
    """One nginx in front of the uvicorn server; ``base`` is what the browser opens."""

    base: str
    port: int
    nginx: Nginx


class Deployment:
    """The processes of one test, each stopped (and its directory removed) when the test ends."""

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self.directory = directory
        self.stack = stack
        self.uvicorn: Uvicorn | None = None
        self.certificate, self.key = self_signed_certificate(directory)

    def serve(self, store_url: str, *, proxy_headers: bool = True, unix_socket: bool = False) -> Uvicorn:
        (self.directory / "uvicorn").mkdir()
        uvicorn = Uvicorn(self.directory / "uvicorn", store_url, proxy_headers=proxy_headers, unix_socket=unix_socket)
        self.stack.callback(uvicorn.stop)
        self.uvicorn = uvicorn.start()
        return uvicorn

    def proxy(self, *, tls: bool = True, edit: Callable[[str], str] = str) -> Site:
        """nginx in front of the server, configured by examples/deploy/nginx.conf after ``edit``."""
        assert self.uvicorn is not None
        port = free_port()
        site = site_config(
            port=port,
            upstream=self.uvicorn.upstream,
            certificate=self.certificate if tls else None,
            key=self.key if tls else None,
            edit=edit,
        )
        directory = self.directory / f"nginx-{port}"
        directory.mkdir()
        nginx = Nginx(directory, site, port)
        self.stack.callback(nginx.stop)
        nginx.start()
        return Site(f"{'https' if tls else 'http'}://{HOSTNAME}:{port}", port, nginx)

    def log(self) -> str:
        assert self.uvicorn is not None
        return self.uvicorn.log()


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    # Not tmp_path: a unix socket's path must stay short, and the directory goes as soon as the test ends.
    directory = Path(tempfile.mkdtemp(prefix="fastapi-sessions-deploy-"))
    try:
        with ExitStack() as stack:
            yield Deployment(directory, stack)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium_driver() -> Iterator["WebDriver"]:
    """One browser for the tests of this module (in each xdist worker that runs some)."""
    directory = Path(tempfile.mkdtemp(prefix="fastapi-sessions-chromium-"))
    try:
        with chromium(directory) as driver:
            yield driver
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def browser(chromium_driver: "WebDriver") -> "WebDriver":
    """The browser without any cookie of an earlier test (cookies are per host, whatever the port)."""
    chromium_driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return chromium_driver


@pytest.fixture(params=["redis", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A store every worker shares, in a namespace of the test's own that is removed afterwards."""
    url = request.getfixturevalue(f"backend_{request.param}").url
    assert isinstance(url, str)
    return url


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue("backend_redis").url
    assert isinstance(url, str)
    return url


def text(browser: "WebDriver", element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.ID, element_id).text)


def open_page(browser: "WebDriver", title: str) -> None:
    try:
        wait_for(lambda: browser.title == title, f"the page {title!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the browser shows {browser.current_url}:\n{browser.page_source[:3000]}") from None


def log_in(browser: "WebDriver", base: str) -> None:
    """Open the login page and send the form, as a user would."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/login")
    open_page(browser, "Log in")
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys("wonderland")
    browser.find_element(By.ID, "login").click()


def answers_of_every_worker(site: Site, cookie: str, workers: set[int]) -> list[dict[str, Any]]:
    """``GET /whoami`` with ``cookie``, through nginx, eight at a time, until each of ``workers`` has answered."""
    headers = {"Host": f"{HOSTNAME}:{site.port}", "Cookie": f"{COOKIE}={cookie}"}
    scheme = site.base.partition(":")[0]
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE
    with (
        httpx.Client(base_url=f"{scheme}://127.0.0.1:{site.port}", headers=headers, verify=False, timeout=10) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        while not workers <= {answer["pid"] for answer in answers}:
            if time.monotonic() > deadline:
                raise AssertionError(f"not every worker of {workers} answered within {DEADLINE} s: {answers}")
            for response in pool.map(lambda _: http.get("/whoami"), range(8)):
                assert response.status_code == 200, response.text
                answers.append(response.json())
    return answers


def test_two_workers_behind_tls_share_logins_and_logouts_and_a_restart_loses_nothing(
    deployment: Deployment, store_url: str, browser: "WebDriver"
) -> None:
    from selenium.webdriver.common.by import By

    uvicorn = deployment.serve(store_url)
    site = deployment.proxy()
    log_in(browser, site.base)
    open_page(browser, "Welcome")
    assert browser.current_url == f"{site.base}/"
    assert text(browser, "user") == "alice"
    note = text(browser, "note")
    login_worker = int(note.removeprefix("logged in by worker "))
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, True, "Lax", "/")

    # The login one worker handled is seen by both.
    workers = uvicorn.worker_pids()
    assert len(workers) == 2 and login_worker in workers, (workers, login_worker)
    answers = answers_of_every_worker(site, cookie["value"], workers)
    assert {(answer["user"], answer["note"]) for answer in answers} == {("alice", note)}

    # The worker that handled the login is stopped; uvicorn's supervisor starts another in its place.
    os.kill(login_worker, signal.SIGTERM)
    uvicorn.wait_until_started(3)
    workers = wait_for(
        lambda: pids if len(pids := uvicorn.worker_pids()) == 2 and login_worker not in pids else None,
        f"a worker in place of {login_worker}",
    )
    assert f"Child process [{login_worker}] died" in uvicorn.log()
    answers = answers_of_every_worker(site, cookie["value"], workers)
    assert {(answer["user"], answer["note"]) for answer in answers} == {("alice", note)}
    browser.refresh()
    open_page(browser, "Welcome")
    assert (text(browser, "user"), text(browser, "note")) == ("alice", note)

    # A logout one worker handled is seen by both: the old cookie is anonymous everywhere.
    browser.find_element(By.ID, "logout").click()
    open_page(browser, "Log in")
    after = browser.get_cookie(COOKIE)  # the login page's anonymous session, for the form's CSRF token
    assert after is not None and after["value"] != cookie["value"]
    answers = answers_of_every_worker(site, cookie["value"], workers)
    assert {answer["user"] for answer in answers} == {None}

    log = uvicorn.log()
    assert "session destroyed" in log and "session regenerated" in log
    assert "CSRF check failed" not in log and "plain http" not in log, log


def test_proxy_headers_left_out_fail_the_csrf_check_and_the_log_names_the_options(
    deployment: Deployment, redis_url: str, browser: "WebDriver"
) -> None:
    """uvicorn on a unix socket without ``--proxy-headers --forwarded-allow-ips``: the app sees http.

    (uvicorn trusts ``X-Forwarded-*`` from 127.0.0.1 by default, so on a loopback port the options
    may be left out; a socket, or a proxy at another address, needs them.)
    """
    deployment.serve(redis_url, proxy_headers=False, unix_socket=True)
    site = deployment.proxy()
    log_in(browser, site.base)
    open_page(browser, "Log in")
    assert text(browser, "error") == FORM_REFUSED
    assert browser.get_cookie(COOKIE) is not None  # the browser is on https: it keeps the cookie

    log = deployment.log()
    own = f"{HOSTNAME}:{site.port}"
    assert (
        f"CSRF check failed on POST /login: Origin https://{own} is neither http://{own} nor a trusted origin "
        f"(the request arrived as http: behind a TLS proxy, have it send X-Forwarded-Proto and {PROXY_FIX})"
    ) in log, log
    assert PLAIN_HTTP_WARNING in log and PROXY_FIX in log, log
    assert '"POST /login HTTP/1.0" 403' in log, log


def test_plain_http_with_the_secure_defaults_loses_the_cookie_and_the_log_says_why(
    deployment: Deployment, redis_url: str, browser: "WebDriver"
) -> None:
    """nginx serving plain http: the browser drops the ``Secure`` cookie without a word."""
    deployment.serve(redis_url)
    site = deployment.proxy(tls=False)
    log_in(browser, site.base)
    open_page(browser, "Log in")
    assert text(browser, "error") == FORM_REFUSED
    assert browser.get_cookies() == []
    browser.get(f"{site.base}/")
    open_page(browser, "Log in")
    assert browser.current_url == f"{site.base}/login"

    log = deployment.log()
    assert 1 <= log.count(PLAIN_HTTP_WARNING) <= 2, log  # once per worker process at most
    assert "SESSION_HTTPS_ONLY=false" in log and PROXY_FIX in log, log
    assert (
        "CSRF check failed on POST /login: the session has no token, and the request carried no session cookie" in log
    )
    assert '"GET / HTTP/1.0" 303' in log, log


def test_nginx_host_without_the_port_fails_every_csrf_check_and_http_host_works(
    deployment: Deployment, redis_url: str, browser: "WebDriver"
) -> None:
    """``proxy_set_header Host $host`` drops the port: on a port other than 443 no Origin matches."""
    deployment.serve(redis_url)
    with_port = deployment.proxy()
    without_port = deployment.proxy(
        edit=lambda template: replace(template, "proxy_set_header Host $http_host;", "proxy_set_header Host $host;")
    )
    log_in(browser, without_port.base)
    open_page(browser, "Log in")
    assert text(browser, "error") == FORM_REFUSED
    log = deployment.log()
    assert (
        f"CSRF check failed on POST /login: Origin https://{HOSTNAME}:{without_port.port} is neither "
        f"https://{HOSTNAME} nor a trusted origin (the Host header lacks the port the browser used: have the proxy "
        "pass it on, with nginx proxy_set_header Host $http_host rather than $host)"
    ) in log, log

    log_in(browser, with_port.base)
    open_page(browser, "Welcome")
    assert text(browser, "user") == "alice"
