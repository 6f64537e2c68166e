"""`SessionManager`: the dependency that hands routes their typed session, and the one place it is all put together."""

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from functools import cached_property
from typing import Any, Generic

from fastapi import FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from fastapi_sessions._core import SessionCore
from fastapi_sessions._gateway import StoreGateway
from fastapi_sessions._logs import printable
from fastapi_sessions._merge import schema_of_model
from fastapi_sessions._middleware import SessionMiddleware
from fastapi_sessions._policy import SessionPolicy
from fastapi_sessions._registry import SessionInfo, UserSessions
from fastapi_sessions._request import RequestSession
from fastapi_sessions._responses import CONFLICT, STORE_UNAVAILABLE, error_response
from fastapi_sessions._transport import SessionTransport
from fastapi_sessions.exceptions import SessionLimitError, StoreUnavailableError
from fastapi_sessions.guards import CsrfGuard, SessionGuard, public
from fastapi_sessions.model import ModelT, SessionModel
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.signing import CookieSigner
from fastapi_sessions.stores import SessionStore, store_from_url

__all__ = ["SessionManager"]

logger = logging.getLogger("fastapi_sessions")


class SessionManager(Generic[ModelT]):
    """Typed server-side sessions for a FastAPI app.

    Use the manager itself as a dependency to get the session, and its guards to protect routes::

        sessions = SessionManager(UserSession)
        sessions.install(app)

        @app.get("/me")
        async def me(session: Annotated[UserSession, Depends(sessions.require_auth)]) -> dict: ...

    Args:
        model: The session model, a subclass of `SessionModel` (or `AuthSession` for guards).
        settings: The settings; read from ``SESSION_*`` environment variables when omitted.
        store: Where sessions live; built from ``settings.store_url`` when omitted.
        clock: Returns the current time in seconds; tests inject their own.

    Raises:
        SessionConfigError: a setting is missing or invalid; the message names the variable.
    """

    def __init__(
        self,
        model: type[ModelT],
        *,
        settings: SessionSettings | None = None,
        store: SessionStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(model, type) and issubclass(model, SessionModel)):
            raise TypeError(f"SessionManager needs a SessionModel subclass, got {model!r}")
        self.model_cls = model
        self.settings = settings if settings is not None else SessionSettings.load()
        self.store = store if store is not None else store_from_url(self.settings.store_url)
        self.cookie_name = self.settings.session_cookie_name
        self.signer = CookieSigner(
            self.settings.secret_key.get_secret_value(),
            [key.get_secret_value() for key in self.settings.secret_key_fallbacks],
            namespace=self.settings.session_namespace,
        )
        policy = SessionPolicy(model, self.settings, clock)
        gateway = StoreGateway(self.store, self.settings.store_timeout)
        self._core = SessionCore(
            model_cls=model,
            settings=self.settings,
            policy=policy,
            gateway=gateway,
            signer=self.signer,
            transport=SessionTransport(self.settings),
            users=UserSessions(
                gateway,
                policy,
                limit=self.settings.max_sessions_per_user,
                limit_policy=self.settings.limit_policy,
            ),
            scope_key=f"fastapi_sessions.{id(self):x}",
            field_schemas=schema_of_model(model),
        )

    @property
    def clock(self) -> Callable[[], float]:
        """Returns the current time in seconds: the clock every timeout is measured by."""
        return self._core.policy.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._core.policy.clock = clock

    # The dependency.

    async def __call__(self, request: HTTPConnection) -> ModelT:
        """The session of this request (loaded from the store on first use)."""
        return await self.session_for(request)

    async def session_for(self, connection: HTTPConnection) -> ModelT:
        """The session of a request or WebSocket, loading it on first use."""
        request_session = await RequestSession.of(connection, self._core)
        return request_session.model  # type: ignore[return-value]  # built from this manager's model

    # Guards.

    @cached_property
    def require_auth(self) -> SessionGuard[ModelT]:
        """Guard: a fully logged-in user (401 otherwise). Returns the session."""
        return SessionGuard(self._core)

    @cached_property
    def require_partial_auth(self) -> SessionGuard[ModelT]:
        """Guard: a user who logged in, possibly with factors still pending (for second-factor pages)."""
        return SessionGuard(self._core, allow_pending=True)

    def require_roles(self, *roles: str) -> SessionGuard[ModelT]:
        """Guard: a logged-in user holding every one of ``roles`` (401 anonymous, 403 lacking one)."""
        return SessionGuard(self._core, roles=roles)

    def require_any_role(self, *roles: str) -> SessionGuard[ModelT]:
        """Guard: a logged-in user holding at least one of ``roles`` (401 anonymous, 403 lacking all)."""
        return SessionGuard(self._core, roles=roles, any_role=True)

    def require_recent_auth(self, seconds: float) -> SessionGuard[ModelT]:
        """Guard (step-up): a user who authenticated less than ``seconds`` ago (403 otherwise).

        After a 403, have the user prove their identity again and call `AuthSession.reauthenticate`.
        """
        return SessionGuard(self._core, max_auth_age=seconds)

    @cached_property
    def require_csrf(self) -> CsrfGuard[ModelT]:
        """Guard: unsafe methods carry the session's CSRF token and a same-origin ``Origin``."""
        return CsrfGuard(self._core)

    public = staticmethod(public)

    # Wiring.

    def install(self, app: FastAPI) -> None:
        """Wire the manager into ``app``: middleware, error handlers, and store open/close on startup/shutdown."""
        if getattr(app.state, "fastapi_sessions_installed", None) is self:
            return
        app.add_middleware(SessionMiddleware, core=self._core)
        app.add_exception_handler(StoreUnavailableError, self._store_unavailable_response)
        app.add_exception_handler(SessionLimitError, _conflict_response)
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app_: Any) -> AsyncIterator[Any]:
            await self.open()
            try:
                async with inner(app_) as state:
                    yield state
            finally:
                await self.close()

        app.router.lifespan_context = lifespan
        app.state.fastapi_sessions_installed = self

    async def _store_unavailable_response(self, request: Request, exc: Exception) -> Response:
        path = printable(request.scope.get("path", ""))
        logger.error("session store unavailable while loading the session for %s: %s", path, str(exc))
        return error_response(STORE_UNAVAILABLE, retry_after=self.settings.retry_after)

    async def open(self) -> None:
        """Open the store (done by the app's startup; also on first use if the app never started)."""
        await self._core.gateway.open()

    async def close(self) -> None:
        """Close the store (done by the app's shutdown)."""
        await self._core.gateway.close()

    # Per-user session control.

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """The live sessions of ``user_id``, oldest first (handles, times, user agent and IP; never tokens)."""
        return await self._core.users.list(user_id)

    async def revoke_session(self, user_id: str, handle: str) -> bool:
        """Revoke one session of ``user_id`` by its handle. Returns whether it was live."""
        return await self._core.users.revoke(user_id, handle)

    async def revoke_all_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke every session of ``user_id`` except the one with handle ``keep``. Returns how many."""
        return await self._core.users.revoke_all(user_id, keep=keep)


async def _conflict_response(request: Request, exc: Exception) -> Response:
    return error_response(CONFLICT, str(exc))
