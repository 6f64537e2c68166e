"""The HTML app the deployment tests serve: a login form with a CSRF token, a page naming the user, and logout.

Every page and ``GET /whoami`` name the worker process that answered, so a test can tell the workers
of ``uvicorn --workers 2`` apart. Settings come from the environment (``SESSION_SECRET_KEY``,
``SESSION_STORE_URL``), read when each worker starts, as in production.
"""

import html
import os
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from fastapi_sessions import AuthSession, SessionManager


class DeploySession(AuthSession):
    """The login, and a note written at login, which must survive workers coming and going."""

    note: str = ""


USERS = {"alice": "wonderland"}
FORM_REFUSED = "This form could not be verified. Please try again."

sessions = SessionManager(DeploySession)
app = FastAPI(title="fastapi_sessions deployment test")
sessions.install(app)

Session = Annotated[DeploySession, Depends(sessions)]
Checked = Annotated[DeploySession, Depends(sessions.require_csrf)]
LoggedIn = Annotated[DeploySession, Depends(sessions.require_auth)]


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}"
        f'<p>Served by worker <span id="pid">{os.getpid()}</span>.</p></body></html>',
        status_code,
    )


def login_page(session: DeploySession, error: str = "", status_code: int = 200) -> HTMLResponse:
    message = f'<p id="error">{html.escape(error)}</p>' if error else ""
    return page(
        "Log in",
        f'{message}<form method="post" action="/login">'
        f'<input type="hidden" name="csrf_token" value="{session.csrf_token}">'
        '<label>User <input name="username" id="username"></label>'
        '<label>Password <input name="password" id="password" type="password"></label>'
        '<button id="login" type="submit">Log in</button></form>',
        status_code,
    )


@app.get("/login")
async def login_form(session: Session) -> HTMLResponse:
    return login_page(session)


@app.post("/login")
async def login(session: Checked, username: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
    if USERS.get(username) != password:
        return login_page(session, "Wrong user name or password.", 401)
    session.login(username)
    session.note = f"logged in by worker {os.getpid()}"
    return RedirectResponse("/", status_code=303)


@app.get("/")
async def home(session: LoggedIn) -> HTMLResponse:
    return page(
        "Welcome",
        f'<p>Logged in as <span id="user">{html.escape(session.user_id or "")}</span>'
        f' (<span id="note">{html.escape(session.note)}</span>).</p>'
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrf_token" value="{session.csrf_token}">'
        '<button id="logout" type="submit">Log out</button></form>',
    )


@app.post("/logout")
async def logout(session: Checked) -> RedirectResponse:
    session.logout()
    return RedirectResponse("/login", status_code=303)


@app.get("/whoami")
async def whoami(session: Session) -> dict[str, object]:
    return {"pid": os.getpid(), "user": session.user_id, "note": session.note}


@app.exception_handler(HTTPException)
async def html_errors(request: Request, exc: HTTPException) -> Response:
    """An anonymous visitor goes to the login page; a refused login form is shown again, as users expect."""
    if exc.status_code == 401:
        return RedirectResponse("/login", status_code=303)
    if exc.status_code == 403 and request.url.path == "/login":
        return login_page(await sessions.session_for(request), FORM_REFUSED, 403)
    return HTMLResponse(
        f"<!doctype html><title>{exc.status_code}</title><p>{html.escape(str(exc.detail))}</p>", exc.status_code
    )
