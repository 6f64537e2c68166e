"""What every page of the web app shares: the session model, the user directory, and rendering."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from examples.webapp.agents import describe_agent
from examples.webapp.users import UserDirectory
from fastapi_sessions import AuthSession, SessionManager

__all__ = ["HERE", "Site", "WebSession", "redirect", "safe_next"]

HERE = Path(__file__).resolve().parent


class WebSession(AuthSession):
    """A visitor's session: the login (from `AuthSession`), whether it is remembered, and a cart of item IDs."""

    remembered: bool = False
    cart: list[str] = []


def redirect(path: str, **query: str) -> RedirectResponse:
    """POST/redirect/GET: a 303, so the browser fetches ``path`` with GET."""
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site; ``/`` for anything else (``//evil.example``, ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


@dataclass(frozen=True)
class Site:
    """The parts the routes share.

    Attributes:
        sessions: The session manager.
        users: The user directory.
        templates: The Jinja2 templates (autoescaped).
        reauth_after: Seconds after a login or re-authentication before the step-up pages ask again.
    """

    sessions: SessionManager[WebSession]
    users: UserDirectory
    templates: Jinja2Templates
    reauth_after: float

    @classmethod
    def build(cls, sessions: SessionManager[WebSession], users: UserDirectory, reauth_after: float) -> "Site":
        templates = Jinja2Templates(directory=HERE / "templates")
        templates.env.trim_blocks = templates.env.lstrip_blocks = True  # tidy HTML around {% ... %} lines
        templates.env.filters["when"] = _when
        templates.env.filters["device"] = describe_agent
        return cls(sessions, users, templates, reauth_after)

    def render(
        self, request: Request, session: WebSession, name: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render the page ``name`` with what the layout shows: the user, the cart size, the flashes, the CSRF token."""
        user = self.users.get(session.user_id) if session.is_authenticated and session.user_id else None
        page = {
            "session": session,
            "user": user,
            "flashes": session.pop_flashes(),
            "csrf_token": session.csrf_token,
            "status_code": status_code,
            **context,
        }
        return self.templates.TemplateResponse(request, name, page, status_code=status_code)

    def render_anonymous(self, request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render ``name`` without a session (when the store cannot be reached)."""
        page = {"session": None, "user": None, "flashes": [], "csrf_token": None, "status_code": status_code, **context}
        return self.templates.TemplateResponse(request, name, page, status_code=status_code)
