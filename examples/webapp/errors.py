"""Error pages for browsers, JSON for API clients: 401 sends a browser to the login page, 403 and 503 explain."""

import inspect

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.responses import Response

from examples.webapp.negotiation import prefers_html
from examples.webapp.site import Site, redirect
from fastapi_sessions import StoreUnavailableError

__all__ = ["RECENT_AUTH_REQUIRED", "install_error_pages"]

# The detail of `require_recent_auth`'s 403 (docs/guards.md, "Error responses"): answered with the password form.
RECENT_AUTH_REQUIRED = "Recent authentication required"

_TITLES = {403: "Not allowed", 404: "Not found", 405: "Not allowed", 503: "Try again in a moment"}
_EXPLAINED = {
    "Not enough privileges": "This page is for administrators only.",
    "CSRF check failed: cross-origin request": "This form was sent from another site, so it was not accepted.",
    "CSRF check failed: missing or wrong token": "This form has expired. Go back, reload the page, and send it again.",
}


def install_error_pages(app: FastAPI, site: Site) -> None:
    """Answer browsers' errors with pages; API clients keep FastAPI's JSON. Call after ``sessions.install(app)``.

    Guards raise Starlette's `HTTPException`, so that is the class handled (FastAPI's is a subclass).
    """
    store_unavailable_json = app.exception_handlers[StoreUnavailableError]  # installed by sessions.install

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not prefers_html(request.headers.get("accept", "")):
            return await http_exception_handler(request, exc)
        if exc.status_code == 401:
            # After logging in, come back here; a POST cannot be repeated by a redirect, so it starts at home.
            if request.method != "GET":
                return redirect("/login")
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect("/login", next=here)
        session = await site.sessions.session_for(request)
        if exc.status_code == 403 and exc.detail == RECENT_AUTH_REQUIRED:
            return site.render(request, session, "reauth.html", status_code=403, next=request.url.path)
        title = _TITLES.get(exc.status_code, "Something went wrong")
        explanation = _EXPLAINED.get(exc.detail, exc.detail)
        response = site.render(
            request, session, "error.html", status_code=exc.status_code, title=title, explanation=explanation
        )
        response.headers.update(exc.headers or {})
        return response

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        answer = store_unavailable_json(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, Response)
        if not prefers_html(request.headers.get("accept", "")):
            return answer
        # Without the store there is no session to show: a page without the visitor's name or flashes.
        page = site.render_anonymous(
            request,
            "error.html",
            status_code=503,
            title=_TITLES[503],
            explanation="The session store cannot be reached. Your session is safe; reload in a few seconds.",
        )
        page.headers["retry-after"] = answer.headers["retry-after"]
        return page

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(StoreUnavailableError, store_unavailable)
