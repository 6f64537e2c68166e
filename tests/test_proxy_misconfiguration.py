"""What the log says when a deployment hides https or the port from the app: the Secure-cookie warning and CSRF hints.

Over HTTP with `TestClient`: the base URL is what a proxy in front would have handed the app (its
scheme after ``X-Forwarded-Proto``, its ``Host``). tests/test_deployment.py shows the same lines
from a real nginx and browser.
"""

import logging
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionManager
from fastapi_sessions._cookies import CookieWriter
from tests.support import login_app, make_manager, settings

PLAIN_HTTP = "was sent over plain http to"


def plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "fastapi_sessions" and PLAIN_HTTP in record.getMessage()
    ]


@pytest.fixture
def app() -> FastAPI:
    return login_app(make_manager(AuthSession, MemoryStore()))


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
        yield caplog


def test_a_secure_cookie_over_plain_http_to_a_real_host_is_logged_once(
    app: FastAPI, logged: pytest.LogCaptureFixture
) -> None:
    with TestClient(app, base_url="http://example.com") as browser:
        for user in ("ann", "bob", "cy"):
            response = browser.post(f"/login/{user}")
            assert "Secure" in response.headers["set-cookie"]
    (line,) = plain_http_warnings(logged)
    assert line.startswith("the Secure cookie __Host-session was sent over plain http to example.com, ")
    for fix in ("SESSION_HTTPS_ONLY=false", "--proxy-headers", "--forwarded-allow-ips", "X-Forwarded-Proto"):
        assert fix in line


def test_each_manager_warns_for_itself(logged: pytest.LogCaptureFixture) -> None:
    for _ in range(2):
        with TestClient(login_app(make_manager(AuthSession, MemoryStore())), base_url="http://example.com:8080") as b:
            b.post("/login/ann")
    assert [line.split(",")[0] for line in plain_http_warnings(logged)] == [
        "the Secure cookie __Host-session was sent over plain http to example.com"
    ] * 2


@pytest.mark.parametrize(
    "base_url",
    [
        "https://example.com",
        "http://127.0.0.1:8000",
        "http://127.0.0.2",
        "http://localhost:8000",
        "http://app.localhost",
        "http://[::1]:8000",
    ],
)
def test_https_and_this_machine_are_not_warned_about(
    app: FastAPI, base_url: str, logged: pytest.LogCaptureFixture
) -> None:
    with TestClient(app, base_url=base_url) as browser:
        assert browser.post("/login/ann").status_code == 200
    assert plain_http_warnings(logged) == []


def test_no_warning_when_the_cookie_is_not_secure(logged: pytest.LogCaptureFixture) -> None:
    app = login_app(make_manager(AuthSession, MemoryStore(), https_only=False))
    with TestClient(app, base_url="http://example.com") as browser:
        assert "Secure" not in browser.post("/login/ann").headers["set-cookie"]
    assert plain_http_warnings(logged) == []


def test_no_warning_without_a_host_to_judge(logged: pytest.LogCaptureFixture) -> None:
    """An HTTP/1.0 request may come without ``Host``: nothing says where the cookie went."""
    writer = CookieWriter(settings())
    writer.check_transport({"type": "http", "scheme": "http", "headers": []})
    assert plain_http_warnings(logged) == []
    writer.check_transport(
        {"type": "http", "scheme": "http", "headers": [(b"accept", b"*/*"), (b"host", b"Example.COM.:80")]}
    )
    assert plain_http_warnings(logged)[0].startswith(
        "the Secure cookie __Host-session was sent over plain http to example.com.,"
    )


def test_no_warning_on_a_response_without_a_cookie(app: FastAPI, logged: pytest.LogCaptureFixture) -> None:
    with TestClient(app, base_url="http://example.com") as browser:
        assert browser.get("/me").status_code == 401
        assert browser.get("/health").status_code == 200
    assert plain_http_warnings(logged) == []


# CSRF refusals that a proxy caused say so.


def csrf_form_app(sessions: SessionManager[AuthSession]) -> FastAPI:
    """A form page that hands out the CSRF token, and the CSRF-guarded POST it sends."""
    app = FastAPI()
    sessions.install(app)

    @app.get("/form")
    async def form(session: Annotated[AuthSession, Depends(sessions)]) -> dict[str, str]:
        return {"token": session.csrf_token}

    @app.post("/login", dependencies=[Depends(sessions.require_csrf)])
    async def login() -> dict[str, bool]:
        return {"ok": True}

    return app


def csrf_refusal(base_url: str, origin: str, caplog: pytest.LogCaptureFixture) -> str:
    app = csrf_form_app(make_manager(AuthSession, MemoryStore(), https_only=False))
    with TestClient(app, base_url=base_url) as browser:
        token = browser.get("/form").json()["token"]
        with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
            response = browser.post("/login", headers={"Origin": origin, "X-CSRF-Token": token})
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check failed: cross-origin request"}
    (line,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("CSRF")]
    return line


def test_a_request_that_lost_its_https_on_the_way_says_so(caplog: pytest.LogCaptureFixture) -> None:
    line = csrf_refusal("http://app.example:8443", "https://app.example:8443", caplog)
    assert line.startswith(
        "CSRF check failed on POST /login: Origin https://app.example:8443 is neither http://app.example:8443 "
        "nor a trusted origin (the request arrived as http: behind a TLS proxy, have it send X-Forwarded-Proto "
        "and run uvicorn with --proxy-headers --forwarded-allow-ips="
    )


def test_a_host_that_lost_its_port_on_the_way_says_so(caplog: pytest.LogCaptureFixture) -> None:
    line = csrf_refusal("https://app.example", "https://app.example:8443", caplog)
    assert line == (
        "CSRF check failed on POST /login: Origin https://app.example:8443 is neither https://app.example "
        "nor a trusted origin (the Host header lacks the port the browser used: have the proxy pass it on, "
        "with nginx proxy_set_header Host $http_host rather than $host)"
    )


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://app.example:9443", "http://app.example", "https://[oops", "null"]
)
def test_another_origin_gets_no_proxy_hint(origin: str, caplog: pytest.LogCaptureFixture) -> None:
    line = csrf_refusal("https://app.example:8443", origin, caplog)
    assert line.endswith("nor a trusted origin"), line


def test_a_form_whose_cookie_the_browser_dropped_says_no_cookie_came(caplog: pytest.LogCaptureFixture) -> None:
    app = csrf_form_app(make_manager(AuthSession, MemoryStore()))
    with TestClient(app, base_url="http://app.example") as browser:
        token = browser.get("/form").json()["token"]
        browser.cookies.clear()  # as a browser on a plain-http page, which keeps no Secure cookie
        with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
            assert browser.post("/login", data={"csrf_token": token}).status_code == 403
    assert "CSRF check failed on POST /login: the session has no token, and the request carried no session cookie" in [
        record.getMessage().partition(" (header")[0] for record in caplog.records
    ]
