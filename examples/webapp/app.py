"""The web app: server-rendered pages on fastapi_sessions, on the embedded memory store by default.

Serve it with ``./scripts/demo`` (http://127.0.0.1:8000), or::

    SESSION_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))') \\
    SESSION_HTTPS_ONLY=false uvicorn examples.webapp.app:app

Log in as alice/alice or admin/admin. Set ``SESSION_STORE_URL`` to run it on another store.
"""

import time
from collections.abc import Callable

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from examples.webapp.account import account_routes
from examples.webapp.cart import cart_routes
from examples.webapp.devices import device_routes
from examples.webapp.errors import install_error_pages
from examples.webapp.headers import SecurityHeaders
from examples.webapp.site import HERE, Site, WebSession
from examples.webapp.users import UserDirectory
from fastapi_sessions import SessionManager, SessionSettings, SessionStore

__all__ = ["REAUTH_AFTER", "app", "create_app"]

# The step-up window: changing the password asks for it again once the last login is older than this.
REAUTH_AFTER = 5 * 60


def create_app(
    *,
    settings: SessionSettings | None = None,
    store: SessionStore | None = None,
    clock: Callable[[], float] = time.time,
    reauth_after: float = REAUTH_AFTER,
) -> FastAPI:
    """A new web app, with users of its own (`UserDirectory.demo`) and its own session manager.

    Args:
        settings: The session settings; read from ``SESSION_*`` variables at startup when omitted.
        store: The session store; built from ``SESSION_STORE_URL`` when omitted (memory by default).
        clock: The session clock (tests move one by hand to age a login).
        reauth_after: The step-up window, in seconds.
    """
    sessions = SessionManager(WebSession, settings=settings, store=store, clock=clock)
    site = Site.build(sessions, UserDirectory.demo(), reauth_after)
    # Every unsafe request carries the session's CSRF token and comes from this origin; GET and HEAD pass.
    app = FastAPI(title="fastapi_sessions web app", dependencies=[Depends(sessions.require_csrf)])
    sessions.install(app)
    install_error_pages(app, site)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for routes in (account_routes, cart_routes, device_routes):
        app.include_router(routes(site))
    app.state.site = site
    return app


app = create_app()
