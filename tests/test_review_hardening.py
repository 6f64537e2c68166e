"""Hostile or unlucky input meets a clear answer: escaped log lines, CSRF forms on a default install,
private caching of logged-in pages, unencodable text, and sessions a changed model can no longer load."""

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import starlette.requests
from fastapi import Depends, FastAPI, Form, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

import fastapi_sessions.guards
from fastapi_sessions import AuthSession, MemoryStore, SessionManager, SessionSettings, StoreUnavailableError
from fastapi_sessions.stores.base import StoredSession

SECRET = "review-hardening-test-secret-0123456789-abcdefgh"
ORIGIN = "https://testserver"


class Notes(AuthSession):
    note: str = ""
    tags: list[str] = []


class SwitchableStore(MemoryStore):
    """A memory store that can be made unreachable."""

    down = False

    async def load(self, key: str) -> StoredSession | None:
        if self.down:
            raise StoreUnavailableError("SwitchableStore: load failed: the test took it down")
        return await super().load(key)


def build(store: MemoryStore | None = None, **settings: Any) -> tuple[FastAPI, SessionManager[Notes]]:
    if store is None:
        store = MemoryStore()
    sessions = SessionManager(Notes, settings=SessionSettings.load(secret_key=SECRET, **settings), store=store)
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[Notes, Depends(sessions)]

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Session) -> dict[str, str]:
        session.login(user_id)
        return {"csrf": session.csrf_token}

    @app.get("/items/{name}")
    async def item(name: str, session: Session) -> str:
        return session.note

    @app.get("/me")
    async def me(session: Session) -> str | None:
        return session.user_id

    @app.get("/me/cached")
    async def me_cached(session: Session, response: Response) -> str | None:
        response.headers["Cache-Control"] = "private, max-age=30"
        return session.user_id

    class NoteIn(BaseModel):
        text: str

    @app.post("/note")
    async def set_note(body: NoteIn, session: Session) -> str:
        session.note = body.text
        return "saved"

    @app.post("/form")
    async def form(
        session: Annotated[Notes, Depends(sessions.require_csrf)], tag: Annotated[str, Form()] = "none"
    ) -> str:
        session.tags = [*session.tags, tag]
        return "posted"

    @app.post("/raw-form")
    async def raw_form(session: Annotated[Notes, Depends(sessions.require_csrf)]) -> str:
        return "posted"

    return app, sessions


@pytest.fixture
def browser() -> Iterator[TestClient]:
    app, _ = build()
    with TestClient(app, base_url=ORIGIN) as client:
        yield client


# Log lines.


@pytest.mark.parametrize("raw", ["%0B", "%0C", "%C2%85", "%E2%80%A8", "%E2%80%A9", "%1B%5B31m", "%0D%0Aforged", "%5C"])
def test_a_client_controlled_path_cannot_break_a_log_line(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    store = SwitchableStore()
    app, _ = build(store)
    with TestClient(app, base_url=ORIGIN) as browser:
        browser.post("/login/ann")
        store.down = True
        with caplog.at_level(logging.ERROR, logger="fastapi_sessions"):
            response = browser.get(f"/items/x{raw}y")
    assert response.status_code == 503
    (line,) = [record.getMessage() for record in caplog.records if "while loading" in record.getMessage()]
    assert line.isprintable(), line
    assert "/items/x" in line and "y:" in line
    if raw == "%5C":
        assert "/items/x\\\\y" in line  # a backslash the client sent is doubled, so escapes cannot be forged


def test_a_csrf_refusal_says_which_origin_was_expected_and_which_arrived(
    browser: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    browser.post("/login/ann")
    with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
        assert browser.post("/raw-form", headers={"Origin": "https://evil.example\x1b[0m"}).status_code == 403
        assert browser.post("/raw-form", headers={"Origin": ORIGIN}).status_code == 403
    lines = [record.getMessage() for record in caplog.records]
    assert (
        "CSRF check failed on POST /raw-form: Origin https://evil.example\\x1b[0m is neither https://testserver "
        "nor a trusted origin" in lines
    )
    assert any(line.startswith("CSRF check failed on POST /raw-form: no token was sent") for line in lines)


# CSRF tokens in HTML forms work without python-multipart.


@pytest.fixture
def without_python_multipart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starlette.requests, "parse_options_header", None)
    monkeypatch.setattr(fastapi_sessions.guards, "_MULTIPART", False, raising=False)


@pytest.mark.usefixtures("without_python_multipart")
def test_a_form_field_token_passes_on_a_default_install(browser: TestClient) -> None:
    token = browser.post("/login/ann").json()["csrf"]
    response = browser.post("/raw-form", data={"csrf_token": token}, headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.text
    response = browser.post("/raw-form", data={"csrf_token": "wrong"}, headers={"Origin": ORIGIN})
    assert response.status_code == 403


@pytest.mark.usefixtures("without_python_multipart")
def test_a_multipart_form_without_python_multipart_is_refused_with_a_log_line_naming_the_fix(
    browser: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = browser.post("/login/ann").json()["csrf"]
    with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
        response = browser.post("/raw-form", files={"csrf_token": (None, token)}, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    assert any("pip install python-multipart" in record.getMessage() for record in caplog.records)


def test_the_route_still_reads_its_form_after_the_guard_did(browser: TestClient) -> None:
    token = browser.post("/login/ann").json()["csrf"]
    for body in ({"csrf_token": token, "tag": "a"}, {"tag": "b", "csrf_token": token}):
        assert browser.post("/form", data=body, headers={"Origin": ORIGIN}).status_code == 200
    files = {"csrf_token": (None, token), "tag": (None, "c")}
    assert browser.post("/form", files=files, headers={"Origin": ORIGIN}).status_code == 200


# Caching of pages made for a logged-in user.


def test_a_page_that_read_a_logged_in_session_is_private_and_not_stored(browser: TestClient) -> None:
    anonymous = browser.get("/me")
    assert "cache-control" not in anonymous.headers
    assert anonymous.headers["vary"] == "Cookie"
    browser.post("/login/ann")
    response = browser.get("/me")
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["vary"] == "Cookie"


def test_a_route_that_sets_its_own_cache_control_keeps_it(browser: TestClient) -> None:
    browser.post("/login/ann")
    assert browser.get("/me/cached").headers["cache-control"] == "private, max-age=30"


# Text that is not valid Unicode.


@pytest.mark.parametrize("logged_in", [False, True])
def test_a_lone_surrogate_is_a_422_and_nothing_is_written(browser: TestClient, logged_in: bool) -> None:
    if logged_in:
        browser.post("/login/ann")
    before = dict(browser.cookies)
    response = browser.post("/note", content=b'{"text": "a\\ud800b"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "not valid Unicode" in response.json()["detail"]
    assert "'note'" in response.json()["detail"]
    assert "set-cookie" not in response.headers
    assert dict(browser.cookies) == before
    assert browser.post("/note", json={"text": "fine"}).status_code == 200
    assert browser.get("/items/x").json() == "fine"


# Sessions that a changed model can no longer load.


class OldShape(AuthSession):
    note: str = ""
    tags: str = "x"  # became a list


def test_a_session_that_no_longer_loads_does_not_count_toward_the_limit() -> None:
    store = MemoryStore()
    old = SessionManager(OldShape, settings=SessionSettings(secret_key=SECRET), store=store)
    old_app = FastAPI()
    old.install(old_app)

    @old_app.post("/login/{user_id}")
    async def old_login(user_id: str, session: Annotated[OldShape, Depends(old)]) -> None:
        session.login(user_id)

    app, _ = build(store, max_sessions_per_user=1, limit_policy="refuse")
    with TestClient(old_app, base_url=ORIGIN) as before, TestClient(app, base_url=ORIGIN) as after:
        assert before.post("/login/ann").status_code == 200
        (stale,) = store._users["ann"]
        response = after.post("/login/ann")
        assert response.status_code == 200, response.text
        assert after.get("/me").json() == "ann"
        assert stale not in store._users["ann"]
        assert len(store._users["ann"]) == 1
