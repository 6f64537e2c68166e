"""Explicit `save` and `reload`, and WebSockets that learn their session ended, on every store."""

import asyncio
import logging
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from fastapi_sessions import SessionError, SessionManager
from tests.support import Backend, Harness, UserSession, parsed_cookies, serve

WATCH_INTERVAL = 0.02  # seconds between two checks of a watched socket's session


def routes(sessions: SessionManager[UserSession]) -> APIRouter:
    router = APIRouter()
    Session = Annotated[UserSession, Depends(sessions)]

    @router.post("/theme-then-fail/{theme}")
    async def theme_then_fail(theme: str, session: Session) -> None:
        session.theme = theme
        await session.save()
        raise HTTPException(500, "the route failed after saving")  # a 5xx commits nothing

    @router.post("/saved-twice/{theme}")
    async def saved_twice(theme: str, session: Session) -> JSONResponse:
        session.theme = "first"
        await session.save()
        session.theme = theme  # the commit writes this later change
        return JSONResponse({"ok": True})

    @router.post("/login-and-save/{uid}")
    async def login_and_save(uid: str, session: Session) -> None:
        session.login(uid)
        await session.save()

    @router.websocket("/ws-session")
    async def ws(websocket: WebSocket, session: Annotated[UserSession, Depends(sessions.require_auth)]) -> None:
        await websocket.accept()
        while True:
            try:
                command = await websocket.receive_text()
            except WebSocketDisconnect:
                return
            if command.startswith("theme="):
                session.theme = command.removeprefix("theme=")
                await session.save()
            elif command == "reload":
                live = await session.reload()
                await websocket.send_json({"live": live, "theme": session.theme, "user": session.user_id})
                continue
            elif command == "live":
                await websocket.send_json({"live": await session.still_live()})
                continue
            await websocket.send_json({"theme": session.theme})

    @router.websocket("/ws-new")
    async def ws_new(websocket: WebSocket, session: Session) -> None:
        await websocket.accept()
        session.theme = "ocean"
        try:
            await session.save()
        except SessionError as exc:
            await websocket.send_json({"error": str(exc)})
        await websocket.close()

    @router.websocket("/watched")
    async def watched(websocket: WebSocket) -> None:
        await websocket.accept()
        async with sessions.watch(websocket, interval=WATCH_INTERVAL) as session:
            await websocket.send_json({"user": session.user_id})
            try:
                while True:
                    await websocket.send_json({"echo": await websocket.receive_text()})
            except WebSocketDisconnect:
                return

    return router


@pytest.fixture
def h(backend: Backend) -> Any:
    with serve(backend, UserSession, routes) as harness:
        yield harness


def cookie_header(h: Harness[UserSession], cookie: str | None) -> dict[str, str]:
    assert cookie is not None
    return {"cookie": f"{h.sessions.cookie_name}={cookie}"}


def test_save_writes_at_once_even_when_the_response_fails(h: Harness[UserSession]) -> None:
    browser = h.login("u1")
    assert browser.post("/theme-then-fail/dark").status_code == 500
    assert browser.get("/me").json()["theme"] == "dark"


def test_the_commit_after_a_save_writes_the_later_changes(h: Harness[UserSession]) -> None:
    browser = h.login("u1")
    h.store.reset()
    assert browser.post("/saved-twice/blue").status_code == 200
    assert [update.get("theme") for update in h.store.updates] == ["first", "blue"]
    assert browser.get("/me").json()["theme"] == "blue"


def test_a_save_that_logs_in_sends_its_cookie_with_the_response(h: Harness[UserSession]) -> None:
    browser = h.browser()
    response = browser.post("/login-and-save/u7")
    assert response.status_code == 200
    assert [cookie.name for cookie in parsed_cookies(response)] == [h.sessions.cookie_name]
    assert browser.get("/me").json()["user_id"] == "u7"


def test_a_websocket_saves_its_changes_and_reloads_others(h: Harness[UserSession]) -> None:
    browser = h.login("u1")
    with h.client.websocket_connect("/ws-session", headers=cookie_header(h, browser.cookie)) as ws:
        ws.send_text("theme=forest")
        assert ws.receive_json() == {"theme": "forest"}
        assert browser.get("/me").json()["theme"] == "forest", "saved from the WebSocket"
        assert browser.post("/write", params={"theme": "night"}).status_code == 200
        ws.send_text("reload")
        assert ws.receive_json() == {"live": True, "theme": "night", "user": "u1"}
        assert browser.post("/logout").status_code == 200
        ws.send_text("live")
        assert ws.receive_json() == {"live": False}
        ws.send_text("reload")
        assert ws.receive_json() == {"live": False, "theme": "light", "user": None}


def test_a_websocket_cannot_save_a_session_that_needs_a_cookie(h: Harness[UserSession]) -> None:
    with h.client.websocket_connect("/ws-new") as ws:
        assert "a WebSocket cannot set a cookie" in ws.receive_json()["error"]
    assert h.store.writes == 0


@pytest.mark.parametrize("ending", ["logout", "revoke_all", "expiry"])
def test_a_watched_websocket_closes_once_its_session_ends(
    h: Harness[UserSession], ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fastapi_sessions")  # the check may close the socket at any moment now
    browser = h.login("u1")
    other_device = h.login("u1")
    with h.client.websocket_connect("/watched", headers=cookie_header(h, browser.cookie)) as ws:
        assert ws.receive_json() == {"user": "u1"}
        ws.send_text("still here")
        assert ws.receive_json() == {"echo": "still here"}
        if ending == "logout":
            assert browser.post("/logout").status_code == 200
        elif ending == "revoke_all":
            assert other_device.post("/devices/revoke-others").status_code == 200
        else:
            h.clock.advance(h.sessions.settings.max_age + 1)
        closing = ws.receive()
        assert closing == {"type": "websocket.close", "code": 1008, "reason": "session ended"}
    assert any("WebSocket closed: its session ended (/watched)" in r.getMessage() for r in caplog.records)


def test_watch_refuses_an_interval_that_is_not_positive(h: Harness[UserSession]) -> None:
    async def enter() -> None:
        async with h.sessions.watch(None, interval=0):  # type: ignore[arg-type]  # refused before it is used
            pass

    with pytest.raises(ValueError, match="interval must be a positive number"):
        asyncio.run(enter())
