"""SessionSettings from the environment and .env files, and startup errors that name the variable to fix."""

import asyncio
import os
from pathlib import Path
from typing import Annotated

import pytest

from fastapi_sessions import AuthSession, MemoryStore, SessionConfigError, SessionManager, SessionSettings
from tests.support import OTHER_SECRET, SECRET, client, set_cookies


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)


def test_every_field_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    monkeypatch.setenv("SESSION_SECRET_KEY_FALLBACKS", f" {OTHER_SECRET} ,")
    monkeypatch.setenv("SESSION_STORE_URL", "memory://?max_entries=5")
    monkeypatch.setenv("SESSION_COOKIE_NAME", "sid")
    monkeypatch.setenv("SESSION_MAX_AGE", "3600")
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "600")
    monkeypatch.setenv("SESSION_ROLLING", "false")
    monkeypatch.setenv("SESSION_TOUCH_AFTER", "30")
    monkeypatch.setenv("SESSION_HTTPS_ONLY", "false")
    monkeypatch.setenv("SESSION_HTTP_ONLY", "true")
    monkeypatch.setenv("SESSION_SAME_SITE", "Strict")
    monkeypatch.setenv("SESSION_DOMAIN", "example.com")
    monkeypatch.setenv("SESSION_PATH", "/app")
    monkeypatch.setenv("SESSION_STRICT_UPDATES", "true")
    monkeypatch.setenv("SESSION_CSRF_TRUSTED_ORIGINS", "https://a.example.com,https://b.example.com")
    monkeypatch.setenv("SESSION_MAX_SESSIONS_PER_USER", "3")
    monkeypatch.setenv("SESSION_LIMIT_POLICY", "refuse")
    settings = SessionSettings()
    assert settings.secret_key.get_secret_value() == SECRET
    assert [key.get_secret_value() for key in settings.secret_key_fallbacks] == [OTHER_SECRET]
    assert settings.session_cookie_name == "sid"
    assert (settings.max_age, settings.idle_timeout, settings.touch_after) == (3600, 600, 30)
    assert not settings.rolling and not settings.https_only and settings.strict_updates
    assert settings.same_site == "strict"
    assert (settings.domain, settings.path) == ("example.com", "/app")
    assert settings.csrf_trusted_origins == ["https://a.example.com", "https://b.example.com"]
    assert (settings.max_sessions_per_user, settings.limit_policy) == (3, "refuse")
    sessions = SessionManager(AuthSession)
    assert isinstance(sessions.store, MemoryStore) and sessions.store.max_entries == 5


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"SESSION_SECRET_KEY={SECRET}\nSESSION_MAX_AGE=120\n")
    settings = SessionSettings()
    assert settings.max_age == 120


def test_a_missing_secret_names_the_variable() -> None:
    with pytest.raises(SessionConfigError) as error:
        asyncio.run(SessionManager(AuthSession).open())
    assert "SESSION_SECRET_KEY: required but not set" in str(error.value)


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", "short")
    monkeypatch.setenv("SESSION_MAX_AGE", "soon")
    monkeypatch.setenv("SESSION_SAME_SITE", "sometimes")
    with pytest.raises(SessionConfigError) as error:
        asyncio.run(SessionManager(AuthSession).open())
    message = str(error.value)
    assert "SESSION_SECRET_KEY is 5 characters" in message
    assert "SESSION_MAX_AGE:" in message
    assert "SESSION_SAME_SITE:" in message
    assert "short" not in message.replace("SESSION_SECRET_KEY is 5 characters", "")


def test_touch_after_must_be_below_the_idle_timeout() -> None:
    with pytest.raises(SessionConfigError, match="SESSION_TOUCH_AFTER"):
        SessionSettings.load(secret_key=SECRET, idle_timeout=60, touch_after=60)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/sessions", "unknown scheme 'ftp'"),
        ("memory://?max_entries=lots", "max_entries must be an integer"),
    ],
)
def test_a_bad_store_url_names_the_variable(url: str, message: str) -> None:
    settings = SessionSettings(secret_key=SECRET, store_url=url)
    with pytest.raises(SessionConfigError, match=message) as error:
        asyncio.run(SessionManager(AuthSession, settings=settings).open())
    assert "SESSION_STORE_URL" in str(error.value)


def test_credentials_in_a_bad_store_url_are_not_echoed() -> None:
    settings = SessionSettings(secret_key=SECRET, store_url="nosuch://user:hunter2@db.example.com/x")
    with pytest.raises(SessionConfigError) as error:
        asyncio.run(SessionManager(AuthSession, settings=settings).open())
    assert "hunter2" not in str(error.value)


def test_the_model_must_be_a_session_model() -> None:
    with pytest.raises(TypeError, match="SessionModel subclass"):
        SessionManager(dict, settings=SessionSettings(secret_key=SECRET))  # type: ignore[type-var]


def test_guards_need_an_auth_session() -> None:
    from fastapi_sessions import SessionModel

    class Plain(SessionModel):
        theme: str = "light"

    sessions = SessionManager(Plain, settings=SessionSettings(secret_key=SECRET))
    with pytest.raises(TypeError, match="subclasses AuthSession"):
        _ = sessions.require_auth


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"cookie_name": "sid\x01", "https_only": False}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "s\tid", "https_only": False}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sïd", "https_only": False}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid;", "https_only": False}, "SESSION_COOKIE_NAME"),
        ({"domain": "example.com\x7f", "cookie_name": "sid"}, "SESSION_DOMAIN"),
        ({"domain": "exämple.com", "cookie_name": "sid"}, "SESSION_DOMAIN"),
        ({"path": "/a;b"}, "SESSION_PATH"),
        ({"path": "/a\r\nSet-Cookie: x=y"}, "SESSION_PATH"),
    ],
)
def test_cookie_attributes_are_printable_ascii(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(SessionConfigError, match=variable):
        SessionSettings.load(secret_key=SECRET, **overrides)


def test_a_browser_session_cookie_has_no_max_age() -> None:
    from fastapi import Depends, FastAPI

    sessions = SessionManager(AuthSession, settings=SessionSettings(secret_key=SECRET, persistent=False))
    app = FastAPI()
    sessions.install(app)

    @app.post("/login")
    async def login(session: Annotated[AuthSession, Depends(sessions)]) -> None:
        session.login("1")

    with client(app) as browser:
        [cookie] = set_cookies(browser.post("/login"))
    assert "Max-Age" not in cookie and "Expires" not in cookie
    assert cookie.startswith("__Host-session=") and "; Secure" in cookie
