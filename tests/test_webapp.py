"""The web app (examples/webapp/) over HTTP: pages for browsers, JSON for API clients, headers, and its parts.

tests/e2e/ drives it in a real browser; these check what is quicker to see from a client: status
codes, headers, the cookie's lifetime, and the small functions the pages rely on.
"""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from examples.webapp.account import REMEMBER_FOR
from examples.webapp.agents import describe_agent
from examples.webapp.app import create_app
from examples.webapp.headers import CONTENT_SECURITY_POLICY
from examples.webapp.negotiation import prefers_html
from examples.webapp.site import safe_next
from examples.webapp.users import UserDirectory, hash_password, verify_password
from fastapi_sessions import StoreUnavailableError
from fastapi_sessions.stores.memory import MemoryStore
from tests.support import BASE_URL, parsed_cookies, settings

# What Chromium sends when it navigates to a page.
PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}


@pytest.fixture
def browser() -> Iterator[TestClient]:
    with TestClient(create_app(settings=settings()), base_url=BASE_URL) as client:
        yield client


def csrf_token(page: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match[1]


def log_in(client: TestClient, username: str, password: str, **form: str) -> Any:
    token = csrf_token(client.get("/login", headers=PAGE))
    data = {"username": username, "password": password, "csrf_token": token, **form}
    return client.post("/login", data=data, headers=PAGE, follow_redirects=False)


def test_a_private_page_sends_browsers_to_the_login_page_and_api_clients_a_401(browser: TestClient) -> None:
    response = browser.get("/devices?tab=all", headers=PAGE, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2Fdevices%3Ftab%3Dall")
    response = browser.get("/devices", follow_redirects=False)  # httpx sends Accept: */*
    assert (response.status_code, response.json()) == (401, {"detail": "Not authenticated"})
    assert response.headers["www-authenticate"] == "Session"
    token = csrf_token(browser.get("/cart"))
    response = browser.post("/devices/revoke-others", headers={**PAGE, "X-CSRF-Token": token})
    assert response.url.path == "/login" and response.url.query == b""  # a POST is not repeated after login


def test_login_goes_to_next_on_this_site_only(browser: TestClient) -> None:
    assert log_in(browser, "alice", "alice", next="/cart").headers["location"] == "/cart"
    browser.cookies.clear()
    assert log_in(browser, "alice", "alice", next="//evil.example/").headers["location"] == "/"
    wrong = log_in(browser, "alice", "nope", next="/cart")
    assert wrong.headers["location"] == "/login?next=%2Fcart"
    assert "Wrong username or password." in browser.get(wrong.headers["location"], headers=PAGE).text


def test_remember_me_gives_a_30_day_cookie_and_otherwise_a_browser_session_one(browser: TestClient) -> None:
    [cookie] = parsed_cookies(log_in(browser, "alice", "alice"))
    assert cookie.name == "__Host-session" and cookie.max_age is None
    browser.cookies.clear()
    [cookie] = parsed_cookies(log_in(browser, "alice", "alice", remember="true"))
    assert cookie.max_age is not None
    assert REMEMBER_FOR.total_seconds() - 60 < cookie.max_age <= REMEMBER_FOR.total_seconds()
    assert {"secure", "httponly"} <= set(cookie.attributes) and cookie.attributes["samesite"] == "Lax"


def test_forbidden_is_a_page_for_browsers_and_json_for_api_clients(browser: TestClient) -> None:
    log_in(browser, "alice", "alice")
    page = browser.get("/admin", headers=PAGE)
    assert page.status_code == 403 and "This page is for administrators only." in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert browser.get("/admin").json() == {"detail": "Not enough privileges"}
    refused = browser.post("/cart/add", data={"item": "tea"}, headers=PAGE)
    assert refused.status_code == 403 and "This form has expired." in refused.text
    missing = browser.get("/nowhere", headers=PAGE)
    assert missing.status_code == 404 and "Not found" in missing.text


def test_step_up_answers_json_clients_with_the_guards_403() -> None:
    with TestClient(create_app(settings=settings(), reauth_after=0), base_url=BASE_URL) as client:
        log_in(client, "alice", "alice")
        assert client.get("/password").json() == {"detail": "Recent authentication required"}
        page = client.get("/password", headers=PAGE)
        assert page.status_code == 403 and 'action="/reauthenticate"' in page.text


def test_pages_carry_security_headers_and_are_not_cached(browser: TestClient) -> None:
    page = browser.get("/", headers=PAGE)
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and "style=" not in page.text
    stylesheet = browser.get("/static/style.css")
    assert stylesheet.status_code == 200 and "no-store" not in stylesheet.headers.get("cache-control", "")


class FlakyStore(MemoryStore):
    """A memory store that can be taken down."""

    down = False

    async def load(self, key: str) -> Any:
        if self.down:
            raise StoreUnavailableError("the test's store is down")
        return await super().load(key)


def test_a_store_outage_is_a_503_page_for_browsers_and_json_for_api_clients() -> None:
    store = FlakyStore()
    with TestClient(create_app(settings=settings(retry_after=7), store=store), base_url=BASE_URL) as client:
        log_in(client, "alice", "alice")
        store.down = True
        page = client.get("/", headers=PAGE)
        assert page.status_code == 503 and page.headers["retry-after"] == "7"
        assert "The session store cannot be reached." in page.text
        answer = client.get("/")
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "7")
        assert answer.json() == {"detail": "Session store unavailable"}


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (PAGE["Accept"], True),
        ("text/html", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.9, application/json;q=0.8", True),
        ("text/html;q=0", False),
        ("text/html;q=x", False),
    ],
)
def test_prefers_html(accept: str, html: bool) -> None:
    assert prefers_html(accept) is html


WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
SAFARI_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"


@pytest.mark.parametrize(
    ("agent", "described"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128 on Windows"),
        (
            f"Mozilla/5.0 (X11; Linux x86_64) {WEBKIT} HeadlessChrome/156.0.0.0 Safari/537.36",
            "Headless Chrome 156 on Linux",
        ),
        (
            f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {WEBKIT} Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome 131 on Android",
        ),
        (
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {SAFARI_WEBKIT} Version/17.4 Safari/605.1.15",
            "Safari 17 on macOS",
        ),
        (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) {SAFARI_WEBKIT} Version/17.4 Mobile/15E148"
            " Safari/604.1",
            "Safari 17 on iOS",
        ),
        (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {WEBKIT} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge 131 on Windows",
        ),
        ("curl/8.5.0", "curl 8"),
        ("SomethingElse/1.0", "Unknown browser"),
        (None, "Unknown device"),
    ],
)
def test_describe_agent(agent: str | None, described: str) -> None:
    assert describe_agent(agent) == described


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("alice"), hash_password("alice")
    assert first != second and first.startswith("scrypt$") and "alice" not in first
    assert verify_password("alice", first) and not verify_password("Alice", first)
    assert not verify_password("alice", "md5$1$1$1$00$00")
    users = UserDirectory.demo()
    assert users.authenticate("alice", "alice") is not None
    assert users.authenticate("alice", "admin") is None and users.authenticate("nobody", "alice") is None
    users.set_password("alice", "changed")
    assert users.authenticate("alice", "alice") is None and users.authenticate("alice", "changed") is not None


@pytest.mark.parametrize(
    ("target", "safe"),
    [("/cart", "/cart"), ("/devices?x=1", "/devices?x=1"), ("//evil.example", "/"), ("/\\evil", "/"), ("", "/")],
)
def test_safe_next(target: str, safe: str) -> None:
    assert safe_next(target) == safe
