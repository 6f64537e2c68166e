"""The demo app, examples/app.py, driven over HTTP as a browser would (https, a cookie jar)."""

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support import SECRET, client, set_cookies

ALICE = {"username": "alice", "password": "wonderland"}
BOB = {"username": "bob", "password": "builder"}


def load_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> ModuleType:
    """Import examples/app.py afresh: it builds its manager at import time from ``SESSION_*`` variables."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "examples.app" in sys.modules:
        return importlib.reload(sys.modules["examples.app"])
    return importlib.import_module("examples.app")


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    return load_demo(monkeypatch, tmp_path)


@pytest.fixture
def browser(demo: ModuleType) -> Iterator[TestClient]:
    with client(demo.app) as test_client:
        yield test_client


def login(browser: TestClient, credentials: dict[str, str]) -> None:
    response = browser.post("/login", json=credentials, follow_redirects=False)
    assert response.status_code == 303


def test_login_redirects_with_the_cookie_on_the_redirect(browser: TestClient) -> None:
    response = browser.post("/login", json=ALICE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/me"
    [cookie] = set_cookies(response)
    assert cookie.startswith("__Host-session=")
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert attributes == {"Max-Age", "Path", "Secure", "HttpOnly", "SameSite"}
    assert "SameSite=Lax" in cookie and "Path=/" in cookie
    assert response.headers["cache-control"] == "no-store"


def test_following_the_login_redirect_lands_on_me(browser: TestClient) -> None:
    response = browser.post("/login", json=ALICE)
    assert response.status_code == 200
    assert str(response.url) == "https://testserver/me"
    assert response.json() == {"user": "1", "roles": ["admin"], "theme": "light"}


def test_wrong_password_is_401_and_sets_no_cookie(browser: TestClient) -> None:
    response = browser.post("/login", json={"username": "alice", "password": "nope"}, follow_redirects=False)
    assert response.status_code == 401
    assert set_cookies(response) == []


def test_me_needs_a_login(browser: TestClient) -> None:
    response = browser.get("/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Session"


def test_admin_is_401_anonymous_403_for_bob_200_for_alice(demo: ModuleType) -> None:
    with client(demo.app) as anonymous:
        response = anonymous.get("/admin")
        assert response.status_code == 401
        assert response.json() == {"detail": "Not authenticated"}
    with client(demo.app) as bob:
        login(bob, BOB)
        response = bob.get("/admin")
        assert response.status_code == 403
        assert response.json() == {"detail": "Not enough privileges"}
    with client(demo.app) as alice:
        login(alice, ALICE)
        response = alice.get("/admin")
        assert response.status_code == 200
        assert response.json() == {"area": "admin"}


def test_cart_persists_between_requests_and_across_login(browser: TestClient) -> None:
    assert browser.get("/cart").json() == {"cart": []}
    assert browser.post("/cart/3").json() == {"cart": [3]}
    assert browser.post("/cart/5").json() == {"cart": [3, 5]}
    assert browser.get("/cart").json() == {"cart": [3, 5]}
    login(browser, BOB)
    assert browser.get("/cart").json() == {"cart": [3, 5]}


def test_a_session_that_stays_empty_sets_no_cookie(browser: TestClient) -> None:
    response = browser.get("/cart")
    assert response.json() == {"cart": []}
    assert set_cookies(response) == []


def test_login_gives_a_new_session_id(browser: TestClient) -> None:
    browser.post("/cart/1")
    before = browser.cookies["__Host-session"]
    login(browser, ALICE)
    assert browser.cookies["__Host-session"] != before
    with client(browser.app) as attacker:  # type: ignore[arg-type]
        attacker.cookies.set("__Host-session", before)
        assert attacker.get("/me").status_code == 401
        assert attacker.get("/cart").json() == {"cart": []}


def test_logout_clears_the_cookie_and_ends_the_session(browser: TestClient) -> None:
    login(browser, ALICE)
    browser.post("/cart/7")
    old_cookie = browser.cookies["__Host-session"]
    response = browser.post("/logout")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    [cookie] = set_cookies(response)
    assert cookie.startswith("__Host-session=;")
    assert "Max-Age=0" in cookie and "Secure" in cookie and "Path=/" in cookie
    assert "__Host-session" not in browser.cookies
    assert browser.get("/me").status_code == 401
    assert browser.get("/cart").json() == {"cart": []}
    browser.cookies.set("__Host-session", old_cookie)  # the old cookie is dead on the server too
    assert browser.get("/me").status_code == 401


def test_health_does_not_touch_the_session(browser: TestClient) -> None:
    login(browser, ALICE)
    response = browser.get("/health")
    assert response.json() == {"status": "ok"}
    assert set_cookies(response) == []
    assert "vary" not in response.headers


def test_websocket_reads_the_session(browser: TestClient) -> None:
    login(browser, BOB)
    browser.post("/cart/9")
    with browser.websocket_connect("wss://testserver/ws") as websocket:
        assert websocket.receive_json() == {"user": "2", "cart": [9]}
        with pytest.raises(WebSocketDisconnect):
            websocket.receive_json()


def test_websocket_of_an_anonymous_visitor(browser: TestClient) -> None:
    with browser.websocket_connect("wss://testserver/ws") as websocket:
        assert websocket.receive_json() == {"user": None, "cart": []}


def test_openapi_shows_the_session_cookie_scheme(browser: TestClient) -> None:
    schema = browser.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["SessionCookie"]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "cookie"
    assert scheme["name"] == "__Host-session"
    assert schema["paths"]["/me"]["get"]["security"] == [{"SessionCookie": []}]
    assert schema["paths"]["/admin"]["get"]["security"] == [{"SessionCookie": []}]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo = load_demo(
        monkeypatch,
        tmp_path,
        SESSION_HTTPS_ONLY="false",
        SESSION_COOKIE_NAME="demo_session",
        SESSION_MAX_AGE="3600",
        SESSION_SAME_SITE="strict",
    )
    assert demo.sessions.settings.https_only is False
    with TestClient(demo.app, base_url="http://testserver") as browser:
        response = browser.post("/login", json=ALICE, follow_redirects=False)
        [cookie] = set_cookies(response)
        assert cookie.startswith("demo_session=")
        assert "Max-Age=3600" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie
        assert browser.get("/me").json()["user"] == "1"
        schema = browser.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["SessionCookie-demo_session"]["name"] == "demo_session"


def test_the_store_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo = load_demo(monkeypatch, tmp_path, SESSION_STORE_URL="memory://?max_entries=1")
    assert demo.sessions.store.max_entries == 1
    with client(demo.app) as first, client(demo.app) as second:
        login(first, ALICE)
        login(second, BOB)  # the store holds one session: the least recently used one goes
        assert second.get("/me").status_code == 200
        assert first.get("/me").status_code == 401
