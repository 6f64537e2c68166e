"""`SessionManager`: the dependency that hands routes their typed session, and the one place it is all put together."""

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from fastapi import FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from fastapi_sessions._cookies import CookieReader, CookieWriter
from fastapi_sessions._core import SessionCore
from fastapi_sessions._events import EVENT_TYPES, EventHub, Listener
from fastapi_sessions._gateway import StoreGateway
from fastapi_sessions._logs import printable
from fastapi_sessions._merge import schema_of_model
from fastapi_sessions._middleware import SessionMiddleware
from fastapi_sessions._policy import SessionPolicy
from fastapi_sessions._registry import SessionInfo, UserSessions
from fastapi_sessions._request import RequestSession
from fastapi_sessions._responses import CONFLICT, STORE_UNAVAILABLE, error_response
from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions.events import EventKind, SessionEvent
from fastapi_sessions.exceptions import SessionLimitError, StoreUnavailableError
from fastapi_sessions.guards import CsrfGuard, SessionGuard, public
from fastapi_sessions.model import ModelT, SessionModel
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.signing import CookieSigner
from fastapi_sessions.stores import SessionStore, store_from_url

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["SessionManager"]

logger = logging.getLogger("fastapi_sessions")

EventT = TypeVar("EventT", bound=SessionEvent)
ResultT = TypeVar("ResultT", bound=Awaitable[None] | None)


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
        listener_timeout: Seconds each event listener may take with one event (see `on`).
        tracer_provider: Where OpenTelemetry spans go; the global provider when omitted. Needs the
            ``otel`` extra; without an SDK nothing is recorded.
        meter_provider: Where OpenTelemetry metrics go; the global provider when omitted.

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
        listener_timeout: float = 5.0,
        tracer_provider: "TracerProvider | None" = None,
        meter_provider: "MeterProvider | None" = None,
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
        telemetry = Telemetry(tracer_provider, meter_provider)
        gateway = StoreGateway(self.store, self.settings.store_timeout, telemetry)
        events = EventHub(lambda: policy.clock(), telemetry, listener_timeout)
        self._core = SessionCore(
            model_cls=model,
            settings=self.settings,
            policy=policy,
            gateway=gateway,
            signer=self.signer,
            cookie_reader=CookieReader(self.cookie_name),
            cookie_writer=CookieWriter(self.settings),
            users=UserSessions(
                gateway,
                policy,
                limit=self.settings.max_sessions_per_user,
                limit_policy=self.settings.limit_policy,
                events=events,
            ),
            scope_key=f"fastapi_sessions.{id(self):x}",
            field_schemas=schema_of_model(model),
            events=events,
            telemetry=telemetry,
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
        """Close the store (done by the app's shutdown), once the event listeners still running are done."""
        await self._core.events.close()
        await self._core.gateway.close()

    # Lifecycle events.

    @overload
    def on(self, kind: type[EventT]) -> Callable[[Callable[[EventT], ResultT]], Callable[[EventT], ResultT]]: ...
    @overload
    def on(
        self, kind: EventKind
    ) -> Callable[[Callable[[SessionEvent], ResultT]], Callable[[SessionEvent], ResultT]]: ...
    def on(self, kind: type[SessionEvent] | EventKind) -> Callable[[Listener], Listener]:
        """Decorator: call the function with each event of ``kind``, after the response is sent.

        ``kind`` is an event class (`SessionCreated`, ...; `SessionEvent` for every event) or its
        name (``"created"``, ...). The function may be sync (it runs in a worker thread) or async.
        Events of a request run once its response is sent, one after another; events with no
        request (a script revoking sessions) run as tasks, awaited by `close`. Each call may take
        ``listener_timeout`` seconds; a listener that raises or overruns is logged on the
        ``fastapi_sessions`` logger and changes nothing else.
        """

        event_type = _event_type(kind)

        def register(listener: Listener) -> Listener:
            self._core.events.add(event_type, listener)
            return listener

        return register

    @overload
    def add_listener(self, kind: type[EventT], listener: Callable[[EventT], Awaitable[None] | None]) -> None: ...
    @overload
    def add_listener(self, kind: EventKind, listener: Callable[[SessionEvent], Awaitable[None] | None]) -> None: ...
    def add_listener(self, kind: type[SessionEvent] | EventKind, listener: Listener) -> None:
        """Call ``listener`` with each event of ``kind``: `on` without the decorator."""
        self._core.events.add(_event_type(kind), listener)

    def remove_listener(self, kind: type[SessionEvent] | EventKind, listener: Listener) -> None:
        """Stop calling ``listener`` with events of ``kind``.

        Raises:
            ValueError: ``listener`` was not registered for ``kind``.
        """
        self._core.events.remove(_event_type(kind), listener)

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


def _event_type(kind: type[SessionEvent] | EventKind) -> type[SessionEvent]:
    if isinstance(kind, str):
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event kind {kind!r}; the kinds are {', '.join(EVENT_TYPES)}")
        return EVENT_TYPES[kind]
    return kind
