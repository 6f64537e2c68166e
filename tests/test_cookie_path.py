"""A request outside the cookie's ``Path`` has no session: no store I/O, no cookie, and a clear error if it tries."""

import logging
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from fastapi_sessions import MemoryStore, SessionConfigError
from fastapi_sessions._paths import browser_path, path_matches
from tests.support import CountingStore, UserSession, make_manager, set_cookies


def app_at(path: str, store: CountingStore) -> FastAPI:
    sessions = make_manager(UserSession, store, https_only=False, path=path)
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]

    @app.get("/{rest:path}")
    async def read(rest: str, session: Session) -> dict[str, Any]:
        return {"theme": session.theme, "handle": session.handle}

    @app.post("/{rest:path}")
    async def write(rest: str, session: Session, theme: str = "dark") -> dict[str, str]:
        session.theme = theme
        return {"theme": session.theme}

    return app


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore())


def test_outside_the_path_a_read_has_no_session_and_costs_nothing(store: CountingStore) -> None:
    with TestClient(app_at("/foo/bar", store), base_url="http://testserver") as http:
        assert http.post("/foo/bar/write").status_code == 200
        cookie = http.cookies["session"]
        store.reset()
        for path in ("/", "/foo", "/foo/barbaz", "/other/foo/bar"):
            response = http.get(path, headers={"cookie": f"session={cookie}"})  # even if a cookie came
            assert response.json() == {"theme": "light", "handle": None}, path
            assert set_cookies(response) == []
        assert store.io == 0
        inside = http.get("/foo/bar/page", headers={"cookie": f"session={cookie}"})
        assert inside.json()["theme"] == "dark"


def test_outside_the_path_a_change_is_a_clear_error_and_the_mismatch_is_logged_once(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "fastapi_sessions")
    with TestClient(app_at("/foo/bar", store), base_url="http://testserver") as http:
        for _ in range(3):
            with pytest.raises(SessionConfigError, match=r"outside the cookie's path SESSION_PATH=/foo/bar"):
                http.post("/")
    assert store.writes == 0, "no orphan records"
    warnings = [r.getMessage() for r in caplog.records if "outside SESSION_PATH" in r.getMessage()]
    assert warnings == [
        "a request for / is outside SESSION_PATH=/foo/bar: requests there have no session (the browser "
        "sends no cookie there); logged once"
    ]


def test_an_app_mounted_under_a_prefix_compares_the_path_the_browser_asked_for(store: CountingStore) -> None:
    root = Starlette(routes=[Mount("/foo", app=app_at("/foo/bar", store))])
    with TestClient(root, base_url="http://testserver") as http:
        with pytest.raises(SessionConfigError, match="/foo/foo/bar"):
            http.post("/foo/foo/bar")
        response = http.post("/foo/bar/x")
        assert response.status_code == 200
        [cookie] = set_cookies(response)
        assert "Path=/foo/bar" in cookie
        assert http.get("/foo/bar/y").json()["theme"] == "dark"


@pytest.mark.parametrize(
    ("request_path", "cookie_path", "sent"),
    [
        ("/foo/bar", "/foo/bar", True),
        ("/foo/bar/", "/foo/bar", True),
        ("/foo/bar/x", "/foo/bar", True),
        ("/foo/barbaz", "/foo/bar", False),
        ("/foo", "/foo/bar", False),
        ("/foo/x", "/foo/", True),
        ("/anything", "/", True),
    ],
)
def test_path_match_is_the_browsers(request_path: str, cookie_path: str, sent: bool) -> None:
    assert path_matches(request_path, cookie_path) is sent


def test_a_server_that_strips_the_mount_point_is_undone() -> None:
    assert browser_path({"root_path": "/app", "path": "/x"}) == "/app/x"
    assert browser_path({"root_path": "/app", "path": "/app/x"}) == "/app/x"
    assert browser_path({"path": ""}) == "/"
