"""An empty ``SESSION_*`` variable keeps the default; ``none`` turns a timeout or limit off; touch_after gives way."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionConfigError, SessionManager, SessionSettings

SECRET = "settings-empty-values-secret-0123456789-abcdefgh"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    yield


def test_an_empty_idle_timeout_keeps_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "")
    assert SessionSettings.load().idle_timeout == 24 * 3600


def test_an_empty_idle_timeout_in_a_dotenv_file_keeps_the_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SESSION_IDLE_TIMEOUT=\nSESSION_MAX_AGE=\n")
    settings = SessionSettings.load()
    assert (settings.idle_timeout, settings.max_age) == (24 * 3600, 14 * 24 * 3600)


def test_none_turns_the_idle_timeout_and_the_limit_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "none")
    monkeypatch.setenv("SESSION_MAX_SESSIONS_PER_USER", "None")
    settings = SessionSettings.load()
    assert (settings.idle_timeout, settings.max_sessions_per_user) == (None, None)


def test_empty_optional_values_stay_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOMAIN", "COOKIE_NAME", "MAX_SESSIONS_PER_USER", "CSRF_TRUSTED_ORIGINS", "ENCRYPTION_KEYS"):
        monkeypatch.setenv(f"SESSION_{name}", "")
    settings = SessionSettings.load()
    assert (settings.domain, settings.cookie_name, settings.max_sessions_per_user) == (None, None, None)
    assert settings.csrf_trusted_origins == settings.encryption_keys == []


def test_an_empty_secret_key_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", "")
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY is empty"):
        SessionSettings.load()


def test_a_short_idle_timeout_alone_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "30")
    settings = SessionSettings.load()
    assert (settings.idle_timeout, settings.touch_after) == (30, 15)


def test_a_touch_after_the_user_wrote_still_conflicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "30")
    monkeypatch.setenv("SESSION_TOUCH_AFTER", "60")
    with pytest.raises(SessionConfigError, match=r"SESSION_TOUCH_AFTER \(60\) must be below SESSION_IDLE_TIMEOUT"):
        SessionSettings.load()


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_with_an_empty_idle_timeout_an_idle_session_still_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_IDLE_TIMEOUT", "")
    clock = Clock()
    sessions = SessionManager(AuthSession, store=MemoryStore(clock=clock), clock=clock)
    app = FastAPI()
    sessions.install(app)

    @app.post("/login")
    async def login(session: Annotated[AuthSession, Depends(sessions)]) -> None:
        session.login("ann")

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> str | None:
        return session.user_id

    with TestClient(app, base_url="https://testserver") as browser:
        browser.post("/login")
        assert browser.get("/me").json() == "ann"
        clock.now += 24 * 3600 + 1
        assert browser.get("/me").status_code == 401
