"""`SessionManager`: the dependency that hands routes their typed session, and everything around it."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from fastapi_sessions.context import INSTALLED, RequestSession
from fastapi_sessions.cookies import CookieReader, CookieWriter
from fastapi_sessions.encryption import DataCipher
from fastapi_sessions.exceptions import (
    SessionDataTooLargeError,
    SessionLimitError,
    StoreUnavailableError,
)
from fastapi_sessions.guards import CsrfGuard, SessionGuard, public
from fastapi_sessions.model import SessionModel
from fastapi_sessions.registry import SessionInfo, UserSessions
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.signing import CookieSigner
from fastapi_sessions.stores import SessionStore, store_from_url

__all__ = ["SessionManager"]

logger = logging.getLogger("fastapi_sessions")

ModelT = TypeVar("ModelT", bound=SessionModel)
T = TypeVar("T")

# Errors a driver raises when its server is down or unreachable; stores raise StoreUnavailableError
# for their own, and these are the backstop.
_UNAVAILABLE = (OSError, TimeoutError, ConnectionError)


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
        self.clock = clock
        self.cookie_name = self.settings.session_cookie_name
        self.signer = CookieSigner(
            self.settings.secret_key.get_secret_value(),
            [key.get_secret_value() for key in self.settings.secret_key_fallbacks],
        )
        self.cipher = DataCipher.from_settings(self.settings)
        self.cookie_reader = CookieReader(self.cookie_name)
        self.cookie_writer = CookieWriter(self.settings)
        self.scope_key = f"fastapi_sessions.{id(self):x}"
        self.users = UserSessions(self)
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._timeout: float | None = None if getattr(self.store, "in_process", False) else self.settings.store_timeout

    # The dependency.

    async def __call__(self, request: HTTPConnection) -> ModelT:
        """The session of this request (loaded from the store on first use)."""
        return await self.session_for(request)

    async def session_for(self, connection: HTTPConnection) -> ModelT:
        """The session of a request or WebSocket, loading it on first use."""
        scope = connection.scope
        request_session: RequestSession | None = scope.get(self.scope_key)
        if request_session is INSTALLED:
            request_session = scope[self.scope_key] = RequestSession(self, scope)
        elif request_session is None:
            raise RuntimeError(
                "the session middleware is not installed: call sessions.install(app) where the app is created"
            )
        model = await request_session.load()
        return model  # type: ignore[return-value]  # the RequestSession was built with this manager's model

    # Guards.

    @cached_property
    def require_auth(self) -> SessionGuard[ModelT]:
        """Guard: a fully logged-in user (401 otherwise). Returns the session."""
        return SessionGuard(self)

    @cached_property
    def require_partial_auth(self) -> SessionGuard[ModelT]:
        """Guard: a user who logged in, possibly with factors still pending (for second-factor pages)."""
        return SessionGuard(self, allow_pending=True)

    def require_roles(self, *roles: str) -> SessionGuard[ModelT]:
        """Guard: a logged-in user holding every one of ``roles`` (401 anonymous, 403 lacking one)."""
        return SessionGuard(self, roles=roles)

    def require_any_role(self, *roles: str) -> SessionGuard[ModelT]:
        """Guard: a logged-in user holding at least one of ``roles`` (401 anonymous, 403 lacking all)."""
        return SessionGuard(self, roles=roles, any_role=True)

    def require_recent_auth(self, seconds: float) -> SessionGuard[ModelT]:
        """Guard (step-up): a user who authenticated less than ``seconds`` ago (403 otherwise).

        After a 403, have the user prove their identity again and call `AuthSession.reauthenticate`.
        """
        return SessionGuard(self, max_auth_age=seconds)

    @cached_property
    def require_csrf(self) -> CsrfGuard[ModelT]:
        """Guard: unsafe methods carry the session's CSRF token and a same-origin ``Origin``."""
        return CsrfGuard(self)

    public = staticmethod(public)

    # Wiring.

    def install(self, app: FastAPI) -> None:
        """Wire the manager into ``app``: middleware, error handlers, and store open/close on startup/shutdown."""
        if getattr(app.state, "fastapi_sessions_installed", None) is self:
            return
        from fastapi_sessions.middleware import SessionMiddleware

        app.add_middleware(SessionMiddleware, manager=self)
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
        logger.error("session store unavailable while loading the session for %s: %s", request.url.path, str(exc))
        return JSONResponse(
            {"detail": "Session store unavailable"},
            status_code=503,
            headers={"Retry-After": str(self.settings.retry_after), "Cache-Control": "no-store"},
        )

    async def open(self) -> None:
        """Open the store (done by the app's startup; also on first use if the app never started)."""
        async with self._open_lock:
            if not self._opened:
                await self.store.open()
                self._opened = True

    async def close(self) -> None:
        """Close the store (done by the app's shutdown)."""
        async with self._open_lock:
            if self._opened:
                self._opened = False
                await self.store.close()

    async def call_store(self, operation: Awaitable[T]) -> T:
        """Await a store operation under ``store_timeout``; failing to reach the store is `StoreUnavailableError`."""
        if not self._opened:
            await self.open()
        try:
            if self._timeout is None:
                return await operation
            async with asyncio.timeout(self._timeout):
                return await operation
        except StoreUnavailableError:
            raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"{type(self.store).__name__}: {type(exc).__name__}: {exc}") from exc

    # Time, size and encoding rules used by the commit path.

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def ttl(self, created: float, seen: float, now: float) -> float:
        """Seconds the store keeps a session: until the absolute or the idle deadline, whichever is first."""
        deadline = created + self.settings.max_age
        idle = self.settings.idle_timeout
        if idle is not None:
            deadline = min(deadline, seen + idle)
        return max(deadline - now, 0.001)

    def expiry_reason(self, data: dict[str, Any]) -> str | None:
        """Why a stored session is dead by this server's clock (``"absolute"``, ``"idle"``), or ``None``."""
        now = self.clock()
        created = data.get("_created")
        if not isinstance(created, int | float) or now >= created + self.settings.max_age:
            return "absolute"
        idle = self.settings.idle_timeout
        seen = data.get("_seen", created)
        if idle is not None and (not isinstance(seen, int | float) or now >= seen + idle):
            return "idle"
        return None

    def check_size(self, data: dict[str, Any]) -> None:
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.settings.max_data_bytes:
            raise SessionDataTooLargeError(
                f"the session is {size} bytes as JSON, over SESSION_MAX_DATA_BYTES={self.settings.max_data_bytes}; "
                "keep large data elsewhere and store its ID in the session, or raise the limit"
            )

    def encode_data(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.cipher.encrypt_fields(data) if self.cipher else data

    def decode_data(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.cipher.decrypt_fields(data) if self.cipher else data

    async def enforce_user_limit(self, user_id: str, current: RequestSession) -> None:
        limit = self.settings.max_sessions_per_user
        if limit is None:
            return
        live = await self.users.list(user_id)
        live = [info for info in live if info.handle != current.key]
        excess = len(live) + 1 - limit
        if excess <= 0:
            return
        if self.settings.limit_policy == "refuse":
            raise SessionLimitError(f"user already has {len(live)} sessions (SESSION_MAX_SESSIONS_PER_USER={limit})")
        for info in sorted(live, key=lambda item: item.created_at)[:excess]:
            await self.call_store(self.store.delete(info.handle, user_id=user_id))
            logger.info("session revoked: oldest session of a user at SESSION_MAX_SESSIONS_PER_USER=%d", limit)

    # Per-user session control.

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """The live sessions of ``user_id``, oldest first (handles, times, user agent and IP; never tokens)."""
        return await self.users.list(user_id)

    async def revoke_session(self, user_id: str, handle: str) -> bool:
        """Revoke one session of ``user_id`` by its handle. Returns whether it was live."""
        return await self.users.revoke(user_id, handle)

    async def revoke_all_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke every session of ``user_id`` except the one with handle ``keep``. Returns how many."""
        return await self.users.revoke_all(user_id, keep=keep)


async def _conflict_response(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=409)
