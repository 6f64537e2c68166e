"""The account pages: home, log in (with "remember me"), log out, re-authenticate, and change the password."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from examples.webapp.site import Site, WebSession, redirect, safe_next
from examples.webapp.users import DEMO_USERS

__all__ = ["MIN_PASSWORD_LENGTH", "REMEMBER_FOR", "REMEMBER_IDLE", "account_routes"]

# "Remember me": the session lasts 30 days, and 7 days without a visit; otherwise it ends with the browser.
REMEMBER_FOR = timedelta(days=30)
REMEMBER_IDLE = timedelta(days=7)
MIN_PASSWORD_LENGTH = 5


def account_routes(site: Site) -> APIRouter:
    """The account pages of ``site``."""
    sessions = site.sessions
    router = APIRouter()
    Session = Annotated[WebSession, Depends(sessions)]
    LoggedIn = Annotated[WebSession, Depends(sessions.require_auth)]
    step_up = [Depends(sessions.require_recent_auth(site.reauth_after))]

    @router.get("/", response_class=HTMLResponse)
    async def home(request: Request, session: Session) -> HTMLResponse:
        return site.render(request, session, "home.html")

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, session: Session, next: str = "/") -> HTMLResponse:
        return site.render(request, session, "login.html", next=safe_next(next), demo_users=DEMO_USERS)

    @router.post("/login", response_class=RedirectResponse, status_code=303)
    async def login(
        session: Session,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        remember: Annotated[bool, Form()] = False,
        next: Annotated[str, Form()] = "/",
    ) -> RedirectResponse:
        user = site.users.authenticate(username, password)
        if user is None:
            session.flash("Wrong username or password.", "error")
            return redirect("/login", next=safe_next(next))
        session.login(user.username, roles=user.roles)  # a new session ID; the cart is kept
        if remember:
            session.set_expiry(REMEMBER_FOR, idle_timeout=REMEMBER_IDLE, persistent=True)
        else:
            session.set_expiry(persistent=False)  # a browser-session cookie: gone when the browser closes
        session.remembered = remember
        session.flash(f"Welcome, {user.name}.", "success")
        return redirect(safe_next(next))

    @router.post("/logout", response_class=RedirectResponse, status_code=303)
    async def logout(session: Session) -> RedirectResponse:
        session.logout()
        session.flash("You are logged out.")
        return redirect("/login")

    @router.post("/reauthenticate", response_class=RedirectResponse, status_code=303)
    async def reauthenticate(
        session: LoggedIn, password: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
    ) -> RedirectResponse:
        assert session.user_id is not None  # require_auth
        if site.users.authenticate(session.user_id, password) is None:
            session.flash("Wrong password.", "error")
        else:
            session.reauthenticate()
        return redirect(safe_next(next))

    @router.get("/password", response_class=HTMLResponse, dependencies=step_up)
    async def password_form(request: Request, session: LoggedIn) -> HTMLResponse:
        return site.render(request, session, "password.html", min_length=MIN_PASSWORD_LENGTH)

    @router.post("/password", response_class=RedirectResponse, status_code=303, dependencies=step_up)
    async def change_password(
        session: LoggedIn, new_password: Annotated[str, Form()], confirm: Annotated[str, Form()]
    ) -> RedirectResponse:
        assert session.user_id is not None  # require_auth
        if new_password != confirm:
            session.flash("The two passwords differ.", "error")
            return redirect("/password")
        if len(new_password) < MIN_PASSWORD_LENGTH:
            session.flash(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "error")
            return redirect("/password")
        site.users.set_password(session.user_id, new_password)
        # Whoever else holds a session of this user (a thief, say) is signed out; this one stays.
        ended = await sessions.revoke_all_sessions(session.user_id, keep=session.handle)
        others = "1 other session" if ended == 1 else f"{ended} other sessions"
        session.flash(f"Password changed. {others} signed out.", "success")
        return redirect("/")

    return router
