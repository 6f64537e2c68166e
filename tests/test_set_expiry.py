"""A lifetime of one session's own (`SessionModel.set_expiry`): "remember me", browser-session cookies, the cap."""

from datetime import timedelta
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from pydantic import ValidationError

from fastapi_sessions import SessionManager, SessionSettings
from fastapi_sessions._policy import SessionPolicy
from tests.support import SECRET, Backend, Harness, UserSession, parsed_cookies, serve

DAY = 24 * 3600.0


def expiry_routes(sessions: SessionManager[UserSession]) -> APIRouter:
    router = APIRouter()
    Session = Annotated[UserSession, Depends(sessions)]

    @router.post("/remember")
    async def remember(
        session: Session, uid: str, days: float = 30, idle_days: float | None = None, persistent: bool | None = None
    ) -> dict[str, Any]:
        session.login(uid)
        session.set_expiry(
            timedelta(days=days), idle_timeout=timedelta(days=idle_days) if idle_days else None, persistent=persistent
        )
        return {"expires_at": session.expires_at.timestamp()}

    @router.post("/expiry")
    async def set_expiry(session: Session, seconds: float | None = None, persistent: bool | None = None) -> Any:
        try:
            session.set_expiry(seconds, persistent=persistent)
        except ValueError as exc:
            return {"error": str(exc)}
        return {"expires_at": session.expires_at.timestamp()}

    @router.post("/regenerate")
    async def regenerate(session: Session) -> None:
        session.regenerate()

    return router


@pytest.fixture
def app(backend: Backend) -> Any:
    with serve(backend, UserSession, expiry_routes) as harness:
        yield harness


def max_age_of(response: Any) -> int | None:
    [cookie] = parsed_cookies(response)
    return cookie.max_age


def test_remember_me_outlives_the_default_lifetime_and_ends_at_its_own(app: Harness[UserSession]) -> None:
    browser = app.browser()
    response = browser.post("/remember", params={"uid": "u1", "days": 30, "idle_days": 7})
    assert response.status_code == 200
    assert max_age_of(response) == 30 * DAY
    assert app.store.ttls[-1] == 7 * DAY, "the store keeps it until the idle deadline"
    assert response.json()["expires_at"] == app.clock.now + 30 * DAY
    for _ in range(5):  # 25 days, active every 5: past SESSION_MAX_AGE (14 days), within its own
        app.clock.advance(5 * DAY)
        assert browser.get("/me").status_code == 200
    app.clock.advance(5 * DAY + 1)
    assert browser.get("/me").status_code == 401, "past its own 30 days"


def test_its_own_idle_timeout_applies(app: Harness[UserSession]) -> None:
    browser = app.browser()
    assert browser.post("/remember", params={"uid": "u1", "days": 30, "idle_days": 2}).status_code == 200
    app.clock.advance(2 * DAY + 1)
    assert browser.get("/me").status_code == 401


def test_the_lifetime_survives_regeneration_and_the_store_ttl_follows(app: Harness[UserSession]) -> None:
    browser = app.browser()
    assert browser.post("/remember", params={"uid": "u1", "days": 20, "idle_days": 20}).status_code == 200
    app.clock.advance(DAY)
    app.store.reset()
    response = browser.post("/regenerate")
    assert max_age_of(response) == 19 * DAY
    assert app.store.ttls == [19 * DAY]
    app.clock.advance(15 * DAY)
    assert browser.get("/me").status_code == 200, "past SESSION_MAX_AGE, within its own lifetime"


def test_a_browser_session_cookie_has_no_max_age_but_the_server_timeouts_stay(app: Harness[UserSession]) -> None:
    browser = app.browser()
    response = browser.post("/remember", params={"uid": "u1", "days": 1, "persistent": False})
    assert max_age_of(response) is None
    app.clock.advance(DAY + 1)
    assert browser.get("/me").status_code == 401


def test_setting_a_lifetime_on_a_stored_session_sends_the_cookie_again(app: Harness[UserSession]) -> None:
    browser = app.login("u1")
    cookie = browser.cookie
    app.clock.advance(3600)
    response = browser.post("/expiry", params={"seconds": 20 * DAY})
    assert max_age_of(response) == 20 * DAY - 3600
    assert browser.cookie == cookie, "the same session, its cookie sent again"
    reset = browser.post("/expiry")  # no values: back to the settings
    assert max_age_of(reset) == app.sessions.settings.max_age - 3600
    app.clock.advance(14 * DAY)
    assert browser.get("/me").status_code == 401


def test_lifetimes_over_the_cap_are_capped(backend: Backend) -> None:
    with serve(backend, UserSession, expiry_routes, max_expiry=int(20 * DAY)) as app:
        browser = app.browser()
        response = browser.post("/remember", params={"uid": "u1", "days": 365, "idle_days": 365})
        assert max_age_of(response) == 20 * DAY
        assert app.store.ttls[-1] == 20 * DAY


def test_a_duration_that_is_not_positive_is_refused(app: Harness[UserSession]) -> None:
    browser = app.login("u1")
    for seconds in (0, -5):
        answer = browser.post("/expiry", params={"seconds": seconds}).json()
        assert answer == {"error": f"set_expiry: max_age must be a positive number of seconds, got {float(seconds)!r}"}


def test_the_cap_defaults_to_30_days_or_the_max_age_and_may_not_be_below_it() -> None:
    assert SessionSettings(secret_key=SECRET).max_expiry == 30 * DAY
    assert SessionSettings(secret_key=SECRET, max_age=int(60 * DAY)).max_expiry == 60 * DAY
    with pytest.raises(ValidationError, match=r"SESSION_MAX_EXPIRY .* must be at least SESSION_MAX_AGE"):
        SessionSettings(secret_key=SECRET, max_age=int(60 * DAY), max_expiry=int(30 * DAY))


@pytest.mark.parametrize(
    "stored", [None, "30", [1, 2], [0, None, True], [10, -1, True], [10, None, "yes"], [float("nan"), None, True]]
)
def test_a_malformed_stored_lifetime_is_the_default_one(stored: Any) -> None:
    policy = SessionPolicy(UserSession, SessionSettings(secret_key=SECRET), lambda: 0.0)
    assert policy.own_lifetime(stored) == policy.default_lifetime


def test_a_short_idle_timeout_of_its_own_touches_more_often() -> None:
    policy = SessionPolicy(UserSession, SessionSettings(secret_key=SECRET), lambda: 0.0)
    lifetime = policy.own_lifetime([3600, 10, True])
    assert lifetime.touch_after == 5
    assert policy.touch_due(0, 5, lifetime) and not policy.touch_due(0, 5, policy.default_lifetime)
