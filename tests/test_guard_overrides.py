"""Guards are one object per kind and arguments, so ``app.dependency_overrides`` can replace them."""

import pytest
from fastapi import FastAPI

from fastapi_sessions import MemoryStore, SessionManager
from tests.support import UserSession, build_app, client, make_manager


@pytest.fixture
def sessions() -> SessionManager[UserSession]:
    return make_manager(UserSession, MemoryStore())


def test_the_same_arguments_give_the_same_guard(sessions: SessionManager[UserSession]) -> None:
    assert sessions.require_auth is sessions.require_auth
    assert sessions.require_partial_auth is sessions.require_partial_auth
    assert sessions.require_csrf is sessions.require_csrf
    assert sessions.require_roles("admin", "ops") is sessions.require_roles("ops", "admin", "ops")
    assert sessions.require_any_role("a", "b") is sessions.require_any_role("b", "a")
    assert sessions.require_recent_auth(300) is sessions.require_recent_auth(300.0)
    distinct = {
        id(guard)
        for guard in (
            sessions.require_roles("admin"),
            sessions.require_roles("admin", "ops"),
            sessions.require_any_role("admin"),
            sessions.require_recent_auth(300),
            sessions.require_recent_auth(60),
            sessions.require_auth,
        )
    }
    assert len(distinct) == 6
    other = make_manager(UserSession, MemoryStore())
    assert other.require_roles("admin") is not sessions.require_roles("admin")


def test_an_override_replaces_a_guard_through_http(sessions: SessionManager[UserSession]) -> None:
    app: FastAPI = build_app(sessions)
    with client(app) as browser:
        assert browser.get("/admin").status_code == 401
        app.dependency_overrides[sessions.require_roles("admin")] = lambda: UserSession(user_id="9", roles={"admin"})
        assert browser.get("/admin").json()["user_id"] == "9"
        assert browser.get("/sensitive").status_code == 401  # another guard is not overridden
        app.dependency_overrides[sessions.require_recent_auth(300)] = lambda: UserSession(user_id="8")
        assert browser.get("/sensitive").json()["user_id"] == "8"
        app.dependency_overrides[sessions.require_auth] = lambda: UserSession(user_id="7")
        assert browser.get("/me").json()["user_id"] == "7"
        app.dependency_overrides.clear()
        assert browser.get("/admin").status_code == 401
