"""The fastapi_sessions demo: login, logout, /me, a role-protected admin page, and a cart.

Run it on the embedded memory store::

    SESSION_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))') \
    SESSION_HTTPS_ONLY=false uvicorn examples.app:app --reload

Set ``SESSION_STORE_URL`` (``redis://...``, ``postgresql://...``, ``mongodb://...``, ``sqlite:///...``)
to run the very same app on another store.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from fastapi_sessions import AuthSession, SessionManager


class UserSession(AuthSession):
    """What this app keeps per visitor: the login (from AuthSession), a theme and a cart."""

    theme: str = "light"
    cart: list[int] = []


class Credentials(BaseModel):
    username: str
    password: str


# A stand-in user directory: username -> (password, user ID, roles).
USERS = {
    "alice": ("wonderland", "1", {"admin"}),
    "bob": ("builder", "2", set()),
}

sessions = SessionManager(UserSession)
app = FastAPI(title="fastapi_sessions demo")
sessions.install(app)

Session = Annotated[UserSession, Depends(sessions)]
LoggedIn = Annotated[UserSession, Depends(sessions.require_auth)]


@app.post("/login")
async def login(credentials: Credentials, session: Session) -> RedirectResponse:
    user = USERS.get(credentials.username)
    if user is None or user[0] != credentials.password:
        raise HTTPException(status_code=401, detail="Invalid credentials")
    session.login(user[1], roles=user[2])
    return RedirectResponse("/me", status_code=303)


@app.get("/me")
async def me(session: LoggedIn) -> dict[str, object]:
    return {"user": session.user_id, "roles": sorted(session.roles), "theme": session.theme}


@app.get("/admin", dependencies=[Depends(sessions.require_roles("admin"))])
async def admin() -> dict[str, str]:
    return {"area": "admin"}


@app.post("/cart/{item_id}")
async def add_to_cart(item_id: int, session: Session) -> dict[str, list[int]]:
    session.cart.append(item_id)
    return {"cart": session.cart}


@app.get("/cart")
async def cart(session: Session) -> dict[str, list[int]]:
    return {"cart": session.cart}


@app.post("/logout")
async def logout(session: Session) -> dict[str, bool]:
    session.logout()
    return {"ok": True}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws")
async def whoami(websocket: WebSocket, session: Session) -> None:
    await websocket.accept()
    await websocket.send_json({"user": session.user_id, "cart": session.cart})
    await websocket.close()
