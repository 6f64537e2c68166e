"""``SESSION_HTTPS_ONLY=auto`` (express-session's ``secure: 'auto'``): Secure and ``__Host-`` on https only."""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fastapi_sessions import MemoryStore, SessionSettings
from tests.support import SECRET, SetCookie, UserSession, make_manager, set_cookies


def auto_app(**overrides: Any) -> FastAPI:
    sessions = make_manager(UserSession, MemoryStore(), https_only="auto", **overrides)
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]

    @app.post("/theme/{theme}")
    async def set_theme(theme: str, session: Session) -> None:
        session.theme = theme

    @app.get("/theme")
    async def theme(session: Session) -> str:
        return session.theme

    @app.post("/logout")
    async def logout(session: Session) -> None:
        session.logout()

    return app


def only_cookie(response: Any) -> SetCookie:
    [header] = set_cookies(response)
    return SetCookie.parse(header)


@pytest.mark.parametrize(
    ("base_url", "name", "secure"),
    [("https://testserver", "__Host-session", True), ("http://app.test", "session", False)],
)
def test_the_cookie_is_secure_and_host_prefixed_only_over_https(base_url: str, name: str, secure: bool) -> None:
    with TestClient(auto_app(), base_url=base_url) as http:
        response = http.post("/theme/dark")
        header = set_cookies(response)[0]
        assert only_cookie(response).name == name
        assert ("; Secure" in header) is secure
        assert http.get("/theme").json() == "dark"
        cleared = http.post("/logout")
        assert only_cookie(cleared).name == name and only_cookie(cleared).max_age == 0
        assert ("; Secure" in set_cookies(cleared)[0]) is secure


def test_the_scheme_is_the_one_the_proxy_reported() -> None:
    app = ProxyHeadersMiddleware(auto_app(), trusted_hosts="*")  # type: ignore[arg-type]  # ASGI types differ
    with TestClient(app, base_url="http://app.test") as http:  # type: ignore[arg-type]
        response = http.post("/theme/dark", headers={"x-forwarded-proto": "https", "x-forwarded-for": "10.0.0.1"})
        assert only_cookie(response).name == "__Host-session"
        assert "; Secure" in set_cookies(response)[0]


def test_a_cookie_set_over_http_is_not_read_over_https() -> None:
    app = auto_app()
    with TestClient(app, base_url="http://app.test") as plain:
        plain.post("/theme/dark")
        cookie = plain.cookies["session"]
    with TestClient(app, base_url="https://app.test") as secure:
        assert secure.get("/theme", headers={"cookie": f"session={cookie}"}).json() == "light"


def test_a_name_of_your_own_stays_the_same_on_both() -> None:
    app = auto_app(cookie_name="sid")
    for base_url in ("http://app.test", "https://app.test"):
        with TestClient(app, base_url=base_url) as http:
            assert only_cookie(http.post("/theme/dark")).name == "sid"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"same_site": "none"}, "SESSION_SAME_SITE=none needs SESSION_HTTPS_ONLY=true"),
        ({"partitioned": True}, "SESSION_PARTITIONED=true needs SESSION_HTTPS_ONLY=true"),
        ({"cookie_name": "__Host-sid"}, "which SESSION_HTTPS_ONLY=auto does not promise"),
        ({"cookie_name": "__Secure-sid"}, "which SESSION_HTTPS_ONLY=auto does not promise"),
    ],
)
def test_what_auto_cannot_promise_is_refused_at_startup(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SessionSettings(secret_key=SECRET, https_only="auto", **overrides)


def test_auto_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_HTTPS_ONLY", "auto")
    assert SessionSettings.load(secret_key=SECRET).https_only == "auto"
    monkeypatch.setenv("SESSION_HTTPS_ONLY", "false")
    assert SessionSettings.load(secret_key=SECRET).https_only is False
