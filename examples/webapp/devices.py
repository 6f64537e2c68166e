"""Your devices (the user's live sessions, each revocable) and the admin's view of every user's sessions."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from examples.webapp.agents import describe_agent
from examples.webapp.site import Site, WebSession, redirect

__all__ = ["device_routes"]


def device_routes(site: Site) -> APIRouter:
    """The "Your devices" page, its two forms, and the admin page."""
    sessions = site.sessions
    router = APIRouter()
    LoggedIn = Annotated[WebSession, Depends(sessions.require_auth)]
    Admin = Annotated[WebSession, Depends(sessions.require_roles("admin"))]

    @router.get("/devices", response_class=HTMLResponse)
    async def devices(request: Request, session: LoggedIn) -> HTMLResponse:
        assert session.user_id is not None  # require_auth
        live = await sessions.list_sessions(session.user_id)
        return site.render(request, session, "devices.html", devices=live, current=session.handle)

    @router.post("/devices/revoke", response_class=RedirectResponse, status_code=303)
    async def revoke(session: LoggedIn, handle: Annotated[str, Form()]) -> RedirectResponse:
        assert session.user_id is not None  # require_auth
        # Only this user's sessions can go: the handle is looked up in their own index.
        device = next((info for info in await sessions.list_sessions(session.user_id) if info.handle == handle), None)
        if device is not None and await sessions.revoke_session(session.user_id, handle):
            session.flash(f"Signed out {describe_agent(device.user_agent)}.", "success")
        else:
            session.flash("That session had ended already.")
        return redirect("/devices")

    @router.post("/devices/revoke-others", response_class=RedirectResponse, status_code=303)
    async def revoke_others(session: LoggedIn) -> RedirectResponse:
        assert session.user_id is not None  # require_auth
        ended = await sessions.revoke_all_sessions(session.user_id, keep=session.handle)
        session.flash(f"Signed out everywhere else ({ended} {'session' if ended == 1 else 'sessions'}).", "success")
        return redirect("/devices")

    @router.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request, session: Admin) -> HTMLResponse:
        # Through each user's index of sessions: no store is scanned.
        listing = [(user, await sessions.list_sessions(user.username)) for user in site.users]
        return site.render(request, session, "admin.html", listing=listing, current=session.handle)

    return router
