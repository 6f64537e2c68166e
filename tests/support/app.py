"""The one app the HTTP tests drive: every route a session's lifecycle, guards, CSRF, flash and devices need.

A test whose model needs fields of its own subclasses `UserSession` and passes the routes that use
them to `build_app` as an `APIRouter`.
"""

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, WebSocket
from fastapi import Response as FastAPIResponse
from fastapi.responses import RedirectResponse

from fastapi_sessions import AuthSession, SessionManager


class UserSession(AuthSession):
    """The session model of the HTTP tests."""

    theme: str = "light"


SessionT = TypeVar("SessionT", bound=UserSession)


def view(session: UserSession) -> dict[str, Any]:
    """What most routes answer: the session's user, roles, theme and pending factors."""
    return {
        "user_id": session.user_id,
        "roles": sorted(session.roles),
        "theme": session.theme,
        "pending": sorted(session.pending_factors),
    }


def build_app(sessions: SessionManager[SessionT], routes: APIRouter | None = None) -> FastAPI:
    """The test app over ``sessions``, with ``routes`` (a test's own) included.

    Args:
        sessions: The manager; its model is `UserSession` or a subclass.
        routes: Routes for the fields of a subclass, built over the same manager.
    """
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]
    LoggedIn = Annotated[UserSession, Depends(sessions.require_auth)]

    @app.get("/public")
    async def public_page() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return view(session)

    @app.post("/cached")
    async def cached(session: Session, response: FastAPIResponse, theme: str | None = None) -> dict[str, Any]:
        response.headers["cache-control"] = "public, max-age=3600"
        response.headers["vary"] = "Accept-Encoding"
        if theme is not None:
            session.theme = theme
        return view(session)

    @app.post("/write")
    async def write(session: Session, theme: str) -> dict[str, Any]:
        session.theme = theme
        return view(session)

    @app.post("/login", response_model=None)
    async def login(
        session: Session, uid: str, role: Annotated[list[str] | None, Query()] = None, next: str | None = None
    ) -> dict[str, Any] | RedirectResponse:
        session.login(uid, role or [])
        if next is not None:
            return RedirectResponse(next, status_code=303)
        return view(session)

    @app.post("/login-partial")
    async def login_partial(session: Session, uid: str) -> dict[str, Any]:
        session.login(uid, pending=["totp"])
        return view(session)

    @app.get("/partial")
    async def partial(session: Annotated[UserSession, Depends(sessions.require_partial_auth)]) -> dict[str, Any]:
        return view(session)

    @app.post("/totp")
    async def totp(session: Annotated[UserSession, Depends(sessions.require_partial_auth)]) -> dict[str, Any]:
        session.complete_factor("totp")
        return view(session)

    @app.get("/me")
    async def me(session: LoggedIn) -> dict[str, Any]:
        return view(session)

    @app.post("/roles/add")
    async def add_role(session: LoggedIn, role: str) -> dict[str, Any]:
        session.roles.add(role)
        return view(session)

    @app.post("/roles/assign")
    async def assign_roles(session: LoggedIn, role: str) -> dict[str, Any]:
        session.roles = {role}
        return view(session)

    @app.post("/user/assign")
    async def assign_user(session: LoggedIn, uid: str) -> dict[str, Any]:
        session.user_id = uid
        return view(session)

    @app.get("/admin")
    async def admin(session: Annotated[UserSession, Depends(sessions.require_roles("admin"))]) -> dict[str, Any]:
        return view(session)

    @app.get("/sensitive")
    async def sensitive(session: Annotated[UserSession, Depends(sessions.require_recent_auth(300))]) -> dict[str, Any]:
        return view(session)

    @app.post("/reauth")
    async def reauth(session: LoggedIn) -> dict[str, Any]:
        session.reauthenticate()
        return view(session)

    @app.post("/logout")
    async def logout(session: Session, flash: str | None = None) -> dict[str, bool]:
        session.logout()
        if flash is not None:
            session.flash(flash)
        return {"ok": True}

    @app.post("/switch-user")
    async def switch_user(session: Session, uid: str) -> dict[str, Any]:
        session.logout()
        session.login(uid)
        return view(session)

    @app.post("/destroy")
    async def destroy(session: Session, flash: str | None = None) -> dict[str, bool]:
        session.destroy()
        if flash is not None:
            session.flash(flash)
        return {"ok": True}

    @app.post("/regenerate")
    async def regenerate(session: Session) -> dict[str, Any]:
        session.regenerate()
        return view(session)

    @app.get("/csrf")
    async def csrf(session: Session) -> dict[str, str]:
        return {"token": session.csrf_token}

    @app.api_route("/transfer", methods=["GET", "POST", "DELETE"])
    async def transfer(session: Annotated[UserSession, Depends(sessions.require_csrf)]) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/flash")
    async def flash(session: Session, message: str, category: str) -> dict[str, bool]:
        session.flash(message, category=category)
        return {"ok": True}

    @app.get("/flashes")
    async def flashes(session: Session) -> list[list[str]]:
        return [list(item) for item in session.pop_flashes()]

    @app.get("/pages/{name}")
    async def page(session: Session, name: str) -> dict[str, Any]:
        return {"name": name, "theme": session.theme}

    @app.websocket("/ws")
    async def updates(websocket: WebSocket, session: LoggedIn) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": session.user_id})
        await websocket.close()

    @app.get("/handle")
    async def handle(session: LoggedIn) -> dict[str, str | None]:
        return {"handle": session.handle}

    @app.get("/devices")
    async def devices(session: LoggedIn) -> list[dict[str, Any]]:
        assert session.user_id is not None
        return [
            {
                "handle": info.handle,
                "created_at": info.created_at.timestamp(),
                "last_seen": info.last_seen.timestamp(),
                "user_agent": info.user_agent,
                "ip": info.ip,
                "current": info.handle == session.handle,
            }
            for info in await sessions.list_sessions(session.user_id)
        ]

    @app.post("/devices/revoke")
    async def revoke(session: LoggedIn, handle: str) -> dict[str, bool]:
        assert session.user_id is not None
        return {"revoked": await sessions.revoke_session(session.user_id, handle)}

    @app.post("/devices/revoke-others")
    async def revoke_others(session: LoggedIn) -> dict[str, int]:
        assert session.user_id is not None
        return {"revoked": await sessions.revoke_all_sessions(session.user_id, keep=session.handle)}

    if routes is not None:
        app.include_router(routes)
    return app


def login_app(sessions: SessionManager[AuthSession]) -> FastAPI:
    """The small app of the store tests: ``POST /login/{user_id}``, ``GET /me`` (logged in), ``GET /health``."""
    app = FastAPI()
    sessions.install(app)

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Annotated[AuthSession, Depends(sessions)]) -> dict[str, str]:
        session.login(user_id)
        return {"user": user_id}

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app
