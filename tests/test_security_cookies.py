"""Keys, cookies and data at rest over HTTP on every store.

Signing-key rotation, secrets refused or hidden, cookie attributes and caching headers, where a
session ID may come from, and encryption of the stored data with key rotation.
"""

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fastapi_sessions import SessionConfigError, SessionDataTooLargeError, SessionManager, SessionSettings
from fastapi_sessions.signing import CookieSigner
from tests.support import (
    OTHER_SECRET,
    SECRET,
    Backend,
    Browser,
    CountingStore,
    FakeClock,
    Harness,
    UserSession,
    build_app,
    client,
    make_manager,
    parsed_cookies,
    serve,
    serve_together,
    set_cookies,
    stored,
)


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness[UserSession]]:
    with serve(backend, UserSession) as value:
        yield value


# Keys and secrets.


def test_fallback_key_is_accepted_and_re_signed(backend: Backend) -> None:
    clock = FakeClock()
    store = backend.make_store()
    shared = CountingStore(store, lifecycle=False)
    old = SessionManager(UserSession, settings=SessionSettings(secret_key=SECRET), store=shared, clock=clock)
    rotated_settings = SessionSettings(secret_key=OTHER_SECRET, secret_key_fallbacks=[SECRET])
    rotated = SessionManager(UserSession, settings=rotated_settings, store=shared, clock=clock)
    retired = SessionManager(UserSession, settings=SessionSettings(secret_key=OTHER_SECRET), store=shared, clock=clock)
    apps = {"/old": build_app(old), "/rotated": build_app(rotated), "/retired": build_app(retired)}
    with serve_together(store, apps) as test_client:
        browser = Browser(test_client, old.cookie_name)
        browser.post("/old/login", params={"uid": "alice"})
        signed_old = browser.cookie
        assert signed_old is not None
        session_id = CookieSigner(SECRET).unsign(signed_old)

        response = browser.get("/rotated/me")
        assert response.status_code == 200
        (resigned,) = parsed_cookies(response)
        assert resigned.value != signed_old
        new_signer = CookieSigner(OTHER_SECRET)
        assert session_id is not None and new_signer.unsign(resigned.value) == (
            session_id.session_id,
            False,
            session_id.key,
        )
        assert CookieSigner(SECRET).unsign(resigned.value) is None
        assert response.headers["cache-control"] == "no-store"
        # Once re-signed, the next response needs no new cookie.
        assert parsed_cookies(browser.get("/rotated/me")) == []

        # With the old key gone from the list, a cookie still signed with it is a fresh anonymous session.
        stale = browser.replay("GET", "/retired/read", signed_old)
        assert stale.status_code == 200 and stale.json()["user_id"] is None
        assert browser.replay("GET", "/retired/me", signed_old).status_code == 401
        assert browser.get("/retired/me").status_code == 200  # the re-signed cookie works


def test_secrets_are_not_in_repr() -> None:
    fernet_key = "x" * 43 + "="
    settings = SessionSettings(secret_key=SECRET, secret_key_fallbacks=[OTHER_SECRET], encryption_keys=[fernet_key])
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text
        assert OTHER_SECRET not in text
        assert fernet_key not in text


@pytest.mark.parametrize(
    "secret",
    ["", "   ", "short-secret", "changeme", "keyboard cat", "a" * 64, "changeme" * 5],
    ids=["empty", "blank", "short", "well-known", "well-known-2", "one-character", "low-entropy"],
)
def test_weak_secrets_are_refused_at_startup(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", secret)
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY"):
        asyncio.run(SessionManager(UserSession).open())
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    monkeypatch.setenv("SESSION_SECRET_KEY_FALLBACKS", secret.strip() or "short")
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY_FALLBACKS"):
        asyncio.run(SessionManager(UserSession).open())


def test_a_missing_secret_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_SECRET_KEY", raising=False)
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY"):
        asyncio.run(SessionManager(UserSession).open())


# Cookie attributes and startup validation.


def test_default_cookie_attributes(h: Harness[UserSession]) -> None:
    (cookie,) = parsed_cookies(h.browser().post("/write", params={"theme": "dark"}))
    assert cookie.name == "__Host-session"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", cookie.value)
    assert cookie.attributes == {
        "max-age": str(14 * 24 * 3600),
        "path": "/",
        "secure": "",
        "httponly": "",
        "samesite": "Lax",
    }


def test_cookie_without_https_only(backend: Backend) -> None:
    with serve(backend, UserSession, https_only=False) as h:
        (cookie,) = parsed_cookies(h.browser().post("/write", params={"theme": "dark"}))
    assert cookie.name == "session"
    assert "secure" not in cookie.attributes
    assert cookie.attributes["httponly"] == "" and cookie.attributes["samesite"] == "Lax"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cookie_name": "__Host-sid", "domain": "example.com"}, "forbids SESSION_DOMAIN"),
        ({"cookie_name": "__Host-sid", "path": "/app"}, "needs SESSION_PATH=/"),
        ({"cookie_name": "__Host-sid", "https_only": False}, "needs SESSION_HTTPS_ONLY=true"),
        ({"path": "/app"}, "needs SESSION_PATH=/"),  # the default name is __Host-session
        ({"domain": "example.com"}, "forbids SESSION_DOMAIN"),
        ({"cookie_name": "__Secure-sid", "https_only": False}, "__Secure- prefix"),
        ({"same_site": "none", "https_only": False}, "SESSION_SAME_SITE=none"),
        ({"cookie_name": "sid;Domain=evil.example"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid\r\nSet-Cookie: x=1"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid\n"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid", "domain": "example.com; Path=/"}, "SESSION_DOMAIN"),
        ({"cookie_name": "sid", "domain": "example.com\r\nX: 1"}, "SESSION_DOMAIN"),
        ({"cookie_name": "sid", "path": "/app;Domain=x"}, "SESSION_PATH"),
        ({"cookie_name": "sid", "path": "/app\n"}, "SESSION_PATH"),
        ({"cookie_name": "sid", "path": "/app\r"}, "SESSION_PATH"),
    ],
)
def test_unsafe_cookie_settings_are_refused_at_startup(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SessionConfigError, match=re.escape(message)):
        SessionSettings.load(secret_key=SECRET, **overrides)


def test_caching_headers(h: Harness[UserSession]) -> None:
    browser = h.browser()
    public = browser.get("/public")
    assert "vary" not in public.headers and "cache-control" not in public.headers
    assert h.store.io == 0

    writing = browser.post("/write", params={"theme": "dark"})
    assert writing.headers["vary"] == "Cookie"
    assert writing.headers["cache-control"] == "no-store"

    reading = browser.get("/read")
    assert reading.headers["vary"] == "Cookie"
    assert "cache-control" not in reading.headers
    assert parsed_cookies(reading) == []

    denied = browser.get("/me")
    assert denied.status_code == 401 and denied.headers["vary"] == "Cookie"

    io = h.store.io
    assert browser.get("/public").headers.get("vary") is None
    assert h.store.io == io


def test_caching_headers_override_the_app_when_a_cookie_is_set(h: Harness[UserSession]) -> None:
    browser = h.browser()
    setting = browser.post("/cached", params={"theme": "dark"})
    assert parsed_cookies(setting) != []
    assert setting.headers.get_list("cache-control") == ["no-store"]
    assert setting.headers["vary"] == "Accept-Encoding, Cookie"
    reading = browser.post("/cached")
    assert parsed_cookies(reading) == []
    assert reading.headers["vary"] == "Accept-Encoding, Cookie"
    assert reading.headers["cache-control"] == "public, max-age=3600"  # the app's choice for a page without a cookie


def test_set_cookie_stays_under_4096_bytes(backend: Backend) -> None:
    long_path = "/" + "p" * 200
    sessions = make_manager(
        UserSession, backend.make_store(), cookie_name="s" * 100, path=long_path, domain="d" * 60 + ".example.com"
    )
    # Served under the cookie's path, as it must be for the browser to send the cookie back.
    with client(build_app(sessions), root_path=long_path) as test_client:
        browser = Browser(test_client, sessions.cookie_name)
        responses = [
            browser.post("/write", params={"theme": "t" * 3000}),
            browser.post("/login", params={"uid": "u" * 1000}),
            browser.post("/logout"),
        ]
    headers = [header for response in responses for header in set_cookies(response)]
    assert len(headers) == 3
    assert all(len(header.encode()) < 4096 for header in headers)


def test_oversized_data_is_a_clear_error(backend: Backend) -> None:
    with serve(backend, UserSession, max_data_bytes=1024) as h:
        browser = h.browser()
        with pytest.raises(SessionDataTooLargeError, match="SESSION_MAX_DATA_BYTES=1024"):
            browser.post("/write", params={"theme": "x" * 2000})
        assert browser.cookie is None
        assert h.store.writes == 0
        assert browser.post("/write", params={"theme": "small"}).status_code == 200
        with pytest.raises(SessionDataTooLargeError):
            browser.post("/write", params={"theme": "x" * 2000})
        assert browser.get("/read").json()["theme"] == "small"  # the stored session is intact


def test_oversized_data_answers_500(backend: Backend) -> None:
    store = backend.make_store()
    sessions = make_manager(UserSession, store, max_data_bytes=1024)
    with client(build_app(sessions), raise_server_exceptions=False) as test_client:
        browser = Browser(test_client, sessions.cookie_name)
        response = browser.post("/write", params={"theme": "x" * 2000})
    assert response.status_code == 500
    assert parsed_cookies(response) == []


def test_the_id_is_only_taken_from_the_cookie(h: Harness[UserSession]) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    cookie = browser.cookie
    assert cookie is not None
    thief = h.browser()
    assert thief.get("/me", params={"session": cookie}).status_code == 401
    assert thief.get("/me", params={"__Host-session": cookie}).status_code == 401
    assert thief.get("/me", headers={"x-session": cookie}).status_code == 401
    assert thief.get("/me", headers={"authorization": f"Bearer {cookie}"}).status_code == 401
    assert thief.cookie is None


def test_two_session_cookies_are_no_session(h: Harness[UserSession]) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    cookie = browser.cookie
    other = h.browser()
    other.post("/login", params={"uid": "mallory"})
    for header in (
        f"__Host-session={cookie}; __Host-session={other.cookie}",
        f"__Host-session={cookie}; __Host-session={cookie}",
        f"__Host-session={other.cookie}; theme=x; __Host-session={cookie}",
    ):
        response = h.browser().get("/me", headers={"cookie": header})
        assert response.status_code == 401
    assert browser.get("/me").json()["user_id"] == "alice"  # neither session was harmed


# Encryption at rest.


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_encryption_at_rest_and_key_rotation(backend: Backend) -> None:
    pytest.importorskip("cryptography")
    first, second = _fernet_key(), _fernet_key()
    clock = FakeClock()
    store = backend.make_store()
    shared = CountingStore(store, lifecycle=False)

    def manager(keys: list[str]) -> SessionManager[UserSession]:
        settings = SessionSettings(secret_key=SECRET, encryption_keys=keys)
        return SessionManager(UserSession, settings=settings, store=shared, clock=clock)

    old, ring, new_only = manager([first]), manager([second, first]), manager([second])
    apps = {"/old": build_app(old), "/ring": build_app(ring), "/new": build_app(new_only)}
    with serve_together(store, apps) as test_client:
        browser = Browser(test_client, old.cookie_name)
        browser.post("/old/write", params={"theme": "ultraviolet-theme"})
        browser.post("/old/login", params={"uid": "user-4821", "role": "auditor"})
        cookie = browser.cookie
        assert cookie is not None
        record = stored(test_client, store, old, cookie)
        assert record is not None
        raw = repr(record.data)
        for plaintext in ("ultraviolet-theme", "user-4821", "auditor"):
            assert plaintext not in raw

        assert browser.get("/ring/me").json()["theme"] == "ultraviolet-theme"
        assert browser.post("/ring/write", params={"theme": "infrared-theme"}).status_code == 200
        assert "infrared-theme" not in repr(stored(test_client, store, old, cookie).data)
        assert browser.get("/old/read").json()["theme"] == "light"  # written with the new key, which old lacks

        response = browser.get("/new/read")  # the remaining fields were written with the removed key
        assert response.status_code == 200
        assert response.json() == {"user_id": None, "roles": [], "theme": "light", "pending": []}
        assert browser.get("/new/me").status_code == 401
