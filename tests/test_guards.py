"""Guards on routes, routers and the whole app; public routes; CSRF on WebSocket handshakes."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from fastapi_sessions import AuthSession, MemoryStore, SessionManager
from tests.support import client, make_manager


def build() -> tuple[FastAPI, SessionManager[AuthSession]]:
    sessions = make_manager(AuthSession, MemoryStore())
    app = FastAPI(dependencies=[Depends(sessions.require_auth)])
    sessions.install(app)
    admin = APIRouter(prefix="/admin", dependencies=[Depends(sessions.require_any_role("admin", "owner"))])

    @admin.get("/panel")
    async def panel() -> str:
        return "panel"

    app.include_router(admin)

    @app.post("/login/{uid}")
    @sessions.public
    async def login(uid: str, session: Annotated[AuthSession, Depends(sessions)]) -> None:
        session.login(uid, roles={"owner"} if uid == "1" else set(), pending=["totp"] if uid == "3" else [])

    @app.get("/second-factor")
    @sessions.public
    async def second_factor(session: Annotated[AuthSession, Depends(sessions.require_partial_auth)]) -> list[str]:
        return sorted(session.pending_factors)

    @app.get("/health")
    @sessions.public
    async def health() -> str:
        return "ok"

    @app.get("/home")
    async def home() -> str:
        return "home"

    @app.websocket("/ws")
    @sessions.public
    async def socket(websocket: WebSocket, session: Annotated[AuthSession, Depends(sessions.require_csrf)]) -> None:
        await websocket.accept()
        await websocket.send_json({"user": session.user_id})
        await websocket.close()

    return app, sessions


def test_app_wide_guard_with_public_routes() -> None:
    app, _ = build()
    with client(app) as browser:
        assert browser.get("/home").status_code == 401
        assert browser.get("/health").text == '"ok"'
        assert browser.get("/second-factor").status_code == 401  # its own parameter guard still applies
        browser.post("/login/3")
        assert browser.get("/second-factor").json() == ["totp"]
        assert browser.get("/home").status_code == 401  # partial login is not a login


def test_router_guard_with_any_role() -> None:
    app, _ = build()
    with client(app) as browser:
        browser.post("/login/2")
        assert browser.get("/home").status_code == 200
        assert browser.get("/admin/panel").status_code == 403
        browser.post("/login/1")
        assert browser.get("/admin/panel").status_code == 200


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [("https://testserver", True), ("https://evil.example", False), (None, False)],
)
def test_csrf_guard_checks_the_origin_of_a_websocket_handshake(origin: str | None, accepted: bool) -> None:
    app, _ = build()
    with client(app) as browser:
        browser.post("/login/2")
        headers = {"origin": origin} if origin else {}
        if accepted:
            with browser.websocket_connect("wss://testserver/ws", headers=headers) as websocket:
                assert websocket.receive_json() == {"user": "2"}
        else:
            with pytest.raises(WebSocketDisconnect) as refused:
                with browser.websocket_connect("wss://testserver/ws", headers=headers):
                    pass
            assert refused.value.code == 1008


def test_openapi_shows_one_cookie_scheme() -> None:
    app, sessions = build()
    schema = app.openapi()
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": sessions.cookie_name,
            "description": "Session cookie set by logging in",
        }
    }
    assert schema["paths"]["/home"]["get"]["security"] == [{"SessionCookie": []}]
