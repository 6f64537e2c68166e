"""`@sessions.public` exempts only guards in ``dependencies=[...]``; one the endpoint reaches at any depth applies."""

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionManager, SessionSettings

SECRET = "public-routes-test-secret-0123456789-abcdefghijkl"


@pytest.fixture
def browser() -> Iterator[TestClient]:
    sessions = SessionManager(AuthSession, settings=SessionSettings(secret_key=SECRET), store=MemoryStore())
    app = FastAPI(dependencies=[Depends(sessions.require_auth)])
    sessions.install(app)

    async def current_user(session: Annotated[AuthSession, Depends(sessions.require_partial_auth)]) -> str | None:
        return session.user_id

    async def admin(session: Annotated[AuthSession, Depends(sessions.require_roles("admin"))]) -> AuthSession:
        return session

    async def deeper(user: Annotated[str | None, Depends(current_user)]) -> str | None:
        return user

    async def form_guard(session: Annotated[AuthSession, Depends(sessions.require_csrf)]) -> None:
        return None

    @app.post("/login/{user_id}")
    @sessions.public
    async def login(user_id: str, session: Annotated[AuthSession, Depends(sessions)]) -> None:
        session.login(user_id, roles={"admin"} if user_id == "root" else set())

    @app.get("/whoami")
    @sessions.public
    async def whoami(user: Annotated[str | None, Depends(current_user)]) -> str | None:
        return user

    @app.get("/whoami-deeper")
    @sessions.public
    async def whoami_deeper(user: Annotated[str | None, Depends(deeper)]) -> str | None:
        return user

    @app.get("/admin-helper")
    @sessions.public
    async def admin_helper(session: Annotated[AuthSession, Depends(admin)]) -> str | None:
        return session.user_id

    @app.post("/form")
    @sessions.public
    async def form(_: Annotated[None, Depends(form_guard)]) -> str:
        return "posted"

    router = APIRouter(dependencies=[Depends(sessions.require_roles("admin"))])

    @router.get("/router-public")
    @sessions.public
    async def router_public() -> str:
        return "open"

    app.include_router(router)

    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_a_guard_reached_through_a_helper_dependency_applies(browser: TestClient) -> None:
    assert browser.get("/whoami").status_code == 401
    assert browser.get("/whoami-deeper").status_code == 401
    browser.post("/login/ann")
    assert browser.get("/whoami").json() == "ann"
    assert browser.get("/whoami-deeper").json() == "ann"


def test_a_role_guard_reached_through_a_helper_applies(browser: TestClient) -> None:
    assert browser.get("/admin-helper").status_code == 401
    browser.post("/login/ann")
    assert browser.get("/admin-helper").status_code == 403
    browser.post("/login/root")
    assert browser.get("/admin-helper").json() == "root"


def test_a_csrf_guard_reached_through_a_helper_applies(browser: TestClient) -> None:
    response = browser.post("/form", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check failed: cross-origin request"}


def test_guards_named_in_dependencies_are_still_exempted(browser: TestClient) -> None:
    assert browser.get("/router-public").json() == "open"
    assert browser.post("/login/ann").status_code == 200
