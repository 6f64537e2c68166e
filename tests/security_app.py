"""The app the security tests drive: every route a session's lifecycle, guards, CSRF and flash need."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi import Response as FastAPIResponse

from fastapi_sessions import AuthSession, SessionManager
from tests.http_harness import Harness, serve
from tests.support import Backend


class UserSession(AuthSession):
    theme: str = "light"


def build_app(sessions: SessionManager[UserSession]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]
    LoggedIn = Annotated[UserSession, Depends(sessions.require_auth)]

    def view(session: UserSession) -> dict[str, Any]:
        return {
            "user_id": session.user_id,
            "roles": sorted(session.roles),
            "theme": session.theme,
            "pending": sorted(session.pending_factors),
        }

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

    @app.post("/login")
    async def login(session: Session, uid: str, role: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        session.login(uid, role or [])
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

    return app


@contextmanager
def harness(backend: Backend, **overrides: Any) -> Iterator[Harness[UserSession]]:
    """This app over the backend's store; ``overrides`` are `SessionSettings` fields."""
    with serve(backend, UserSession, build_app, **overrides) as value:
        yield value
