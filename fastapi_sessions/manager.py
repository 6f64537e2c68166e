"""`SessionManager`: the dependency that hands routes their typed session, and the one place it is all put together."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

from fastapi import FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState

from fastapi_sessions._core import SessionCore, SettingsSource
from fastapi_sessions._events import EVENT_TYPES, EventHub, Listener
from fastapi_sessions._logs import printable
from fastapi_sessions._middleware import SessionMiddleware
from fastapi_sessions._openapi import document_session_responses
from fastapi_sessions._registry import SessionInfo
from fastapi_sessions._request import RequestSession
from fastapi_sessions._responses import CONFLICT, STORE_UNAVAILABLE, error_response
from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions.events import EventKind, SessionEvent
from fastapi_sessions.exceptions import SessionLimitError, StoreUnavailableError
from fastapi_sessions.guards import CsrfGuard, SessionGuard, public
from fastapi_sessions.model import ModelT, SessionModel
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.signing import CookieSigner
from fastapi_sessions.stores import SessionStore

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

    Creating the manager reads no setting, so a module that creates it imports without any
    ``SESSION_*`` variable. The settings are read and the store is built when the app starts
    (`install`, `lifespan`, ``async with sessions``), or on first use if it never starts; a
    misconfiguration fails there, naming the variable to fix. Until then `configure` can replace
    the settings and the store.

    Args:
        model: The session model, a subclass of `SessionModel` (or `AuthSession` for guards).
        settings: The settings, or a function called for them at startup
            (``lambda: SessionSettings.load(cookie_name="__Host-admin")``); read from ``SESSION_*``
            environment variables at startup when omitted.
        store: Where sessions live; built from ``settings.store_url`` at startup when omitted.
        clock: Returns the current time in seconds; tests inject their own.
        scheme_name: The name of the OpenAPI security scheme of its guards. By default
            ``SessionCookie`` for the default cookie name and ``SessionCookie-<cookie name>`` for
            another, so that several managers of one app show distinct schemes.
        listener_timeout: Seconds each event listener may take with one event (see `on`).
        tracer_provider: Where OpenTelemetry spans go; the global provider when omitted. Needs the
            ``otel`` extra; without an SDK nothing is recorded.
        meter_provider: Where OpenTelemetry metrics go; the global provider when omitted.

    Raises:
        TypeError: ``model`` is not a `SessionModel` subclass.
    """

    def __init__(
        self,
        model: type[ModelT],
        *,
        settings: SettingsSource | None = None,
        store: SessionStore | None = None,
        clock: Callable[[], float] = time.time,
        scheme_name: str | None = None,
        listener_timeout: float = 5.0,
        tracer_provider: "TracerProvider | None" = None,
        meter_provider: "MeterProvider | None" = None,
    ) -> None:
        if not (isinstance(model, type) and issubclass(model, SessionModel)):
            raise TypeError(f"SessionManager needs a SessionModel subclass, got {model!r}")
        self.model_cls = model
        telemetry = Telemetry(tracer_provider, meter_provider)
        events = EventHub(lambda: self._core.clock(), telemetry, listener_timeout)
        self._core = SessionCore(
            model,
            scope_key=f"fastapi_sessions.{id(self):x}",
            settings=settings,
            store=store,
            clock=clock,
            scheme_name=scheme_name,
            events=events,
            telemetry=telemetry,
        )

    def configure(self, *, settings: SettingsSource | None = None, store: SessionStore | None = None) -> None:
        """Replace the settings or the store before the app starts (a test's own, say).

        What is not given stays as it was: the settings and store passed to the constructor, or else
        the ones read at startup from the ``SESSION_*`` variables. Guards and dependencies made
        already use the new ones.

        Raises:
            RuntimeError: the store is open (the app is running); call it before startup or after `close`.
        """
        self._core.configure(settings=settings, store=store)

    @property
    def settings(self) -> SessionSettings:
        """The settings in effect (read from the environment on first access if not given).

        Raises:
            SessionConfigError: a setting is missing or invalid; the message names the variable.
        """
        return self._core.settings

    @property
    def store(self) -> SessionStore:
        """The store in effect: the one given, or else the one built from ``SESSION_STORE_URL`` on first access."""
        return self._core.store

    @property
    def signer(self) -> CookieSigner:
        """Signs and verifies this manager's cookie values (needs the settings, so reads them)."""
        return self._core.signer

    @property
    def cookie_name(self) -> str:
        """The session cookie's name; known without the secret key, so also before startup."""
        return self._core.cookie_name

    @property
    def clock(self) -> Callable[[], float]:
        """Returns the current time in seconds: the clock every timeout is measured by."""
        return self._core.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._core.clock = clock

    # The dependency.

    async def __call__(self, request: HTTPConnection) -> ModelT:
        """The session of this request (loaded from the store on first use)."""
        request_session = await RequestSession.of(request, self._core)  # session_for, inlined: every route
        return request_session.model  # type: ignore[return-value]  # built from this manager's model

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
        """Guard: a logged-in user holding every one of ``roles`` (401 anonymous, 403 lacking one).

        The same roles, in any order, give the same guard object, so ``app.dependency_overrides``
        can replace it: ``require_roles("a", "b") is require_roles("b", "a")``.
        """
        return self._guard(("roles", frozenset(roles)), lambda: SessionGuard(self._core, roles=roles))

    def require_any_role(self, *roles: str) -> SessionGuard[ModelT]:
        """Guard: a logged-in user holding at least one of ``roles`` (401 anonymous, 403 lacking all).

        Like `require_roles`, the same roles in any order give the same guard object.
        """
        return self._guard(("any_role", frozenset(roles)), lambda: SessionGuard(self._core, roles=roles, any_role=True))

    def require_recent_auth(self, seconds: float) -> SessionGuard[ModelT]:
        """Guard (step-up): a user who authenticated less than ``seconds`` ago (403 otherwise).

        After a 403, have the user prove their identity again and call `AuthSession.reauthenticate`.
        The same ``seconds`` give the same guard object (``300`` and ``300.0`` alike).
        """
        return self._guard(("recent_auth", float(seconds)), lambda: SessionGuard(self._core, max_auth_age=seconds))

    @cached_property
    def require_csrf(self) -> CsrfGuard[ModelT]:
        """Guard: unsafe methods carry the session's CSRF token and a same-origin ``Origin``."""
        return CsrfGuard(self._core)

    public = staticmethod(public)

    # Wiring.

    def install(self, app: FastAPI) -> None:
        """Wire the manager into ``app``: middleware, error handlers, and `lifespan` around the app's own.

        The store opens (and the settings are read) before the app's own startup runs, and closes
        after its own shutdown, whatever lifespan the app was given.
        """
        # Several managers may serve one app (a site and its admin area); each installs once.
        installed: tuple[SessionManager[Any], ...] = getattr(app.state, "fastapi_sessions_installed", ())
        if any(manager is self for manager in installed):
            return
        app.add_middleware(SessionMiddleware, core=self._core)
        app.add_exception_handler(StoreUnavailableError, self._store_unavailable_response)
        app.add_exception_handler(SessionLimitError, _conflict_response)
        document_session_responses(app, self._core, self)
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app_: Any) -> AsyncIterator[Any]:
            async with self.lifespan(app_), inner(app_) as state:
                yield state

        app.router.lifespan_context = lifespan
        app.state.fastapi_sessions_installed = (*installed, self)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """A lifespan that opens the manager at startup and closes it at shutdown.

        `install` runs it around the app's own lifespan already. Spell it out where that one does
        not run, such as an app mounted under another, which gets no lifespan events of its own:
        ``FastAPI(lifespan=sessions.lifespan)`` on the outer app, or ``async with sessions:``
        nested in a lifespan of the app's own.
        """
        async with self:
            yield

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _store_unavailable_response(self, request: Request, exc: Exception) -> Response:
        path = printable(request.scope.get("path", ""))
        logger.error("session store unavailable while loading the session for %s: %s", path, str(exc))
        return error_response(STORE_UNAVAILABLE, retry_after=self.settings.retry_after)

    async def open(self) -> None:
        """Read the settings, build the store and open it, starting its cleanup task if it has one.

        Done by the app's startup (also on first use if the app never started). Opening an open
        manager does nothing.

        Raises:
            SessionConfigError: a setting is missing or invalid; the message names the variable.
        """
        self._core.build()
        await self._core.gateway.open()

    async def close(self) -> None:
        """Close the store (done by the app's shutdown), once the event listeners still running are done.

        Safe if it never opened.
        """
        await self._core.events.close()
        if self._core.built:
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

    # Guard objects, one per kind and arguments.

    @cached_property
    def _guards(self) -> dict[tuple[str, object], SessionGuard[ModelT]]:
        return {}

    def _guard(self, key: tuple[str, object], build: Callable[[], SessionGuard[ModelT]]) -> SessionGuard[ModelT]:
        guard = self._guards.get(key)
        if guard is None:
            guard = self._guards.setdefault(key, build())
        return guard

    # Sessions made and read without a request: for tests (`fastapi_sessions.testing`) and tools.

    async def create_session(
        self, prepare: Callable[[ModelT], object] | None = None, *, user_agent: str | None = None
    ) -> tuple[ModelT, str]:
        """Store a new session without an HTTP request, written exactly as a request's commit writes one.

        A new session is made from the model's defaults and given a CSRF token; ``prepare`` then
        changes it as a route would (``lambda session: session.login("42")``), and it is committed:
        the same record, metadata, per-user index and per-user limit as the commit of a request.

        Args:
            prepare: Changes the new session before it is stored.
            user_agent: Recorded as the ``User-Agent`` of the request that made it (`list_sessions` shows it).

        Returns:
            The session as the next request will load it (reading its ``handle``, ``csrf_token`` and
            ``created_at`` works; changing it saves nothing), and the ``Set-Cookie`` header value
            that carries it, with the attributes a response would send.

        Raises:
            SessionLimitError: ``prepare`` logged a user in who is at ``max_sessions_per_user`` and
                ``limit_policy`` is ``refuse``.
            StoreUnavailableError: the store could not be reached.
        """
        headers = [(b"user-agent", user_agent.encode("latin-1"))] if user_agent else []
        request_session = RequestSession(self._core, {"type": "http", "headers": headers, "client": None})
        model = cast(ModelT, await request_session.load())
        _ = model.csrf_token  # a change of its own: even a session left at its defaults is stored
        if prepare is not None:
            prepare(model)
        headers = await request_session.commit()
        object.__setattr__(model, "_request_session", None)
        if not headers:
            raise ValueError("prepare left no session to store: it destroyed the new session (destroy or logout)")
        set_cookie = headers[0][1].decode("latin-1")
        stored = await self.load_session(set_cookie.partition(";")[0].partition("=")[2])
        assert stored is not None, "the session just stored does not load"
        return stored, set_cookie

    async def load_session(self, cookie: str) -> ModelT | None:
        """The session a session cookie's value names, as a request sending that cookie would load it.

        Nothing is written: the session is not touched and its idle timeout does not restart.

        Args:
            cookie: The value of the session cookie (without its name).

        Returns:
            The session (reading its ``handle``, ``csrf_token`` and ``created_at`` works; changing it
            saves nothing), or ``None`` if the cookie does not verify or its session is unknown, expired
            or no longer valid for the model: where a request would start a new session.
        """
        cookie_header = f"{self.cookie_name}={cookie}".encode("latin-1")
        request_session = RequestSession(self._core, {"type": "http", "headers": [(b"cookie", cookie_header)]})
        model = await request_session.load()
        if request_session.key is None:
            return None
        return model  # type: ignore[return-value]  # built from this manager's model

    @contextlib.asynccontextmanager
    async def watch(self, websocket: WebSocket, *, interval: float = 30.0) -> AsyncIterator[ModelT]:
        """Keep a WebSocket open only while its session lives; yields the session.

        Every ``interval`` seconds the session is checked against the store
        (`SessionModel.still_live`): once it is gone (the user logged out elsewhere, an admin revoked
        it, another request regenerated it) or expired, the socket is closed with code 1008
        (policy violation), and the route's next ``receive`` raises ``WebSocketDisconnect``. While
        the store cannot be reached the socket stays open and each failed check is logged.

        Args:
            websocket: The route's WebSocket, accepted or not.
            interval: Seconds between two checks.
        """
        if interval <= 0:
            raise ValueError(f"watch: interval must be a positive number of seconds, got {interval!r}")
        request_session = await RequestSession.of(websocket, self._core)

        async def check() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    live = await request_session.still_live()
                except StoreUnavailableError as exc:
                    logger.warning("WebSocket session check failed, the socket stays open: %s", str(exc))
                    continue
                if not live:
                    logger.info("WebSocket closed: its session ended (%s)", printable(websocket.url.path))
                    if websocket.client_state is not WebSocketState.DISCONNECTED:
                        with contextlib.suppress(RuntimeError, OSError):  # the client went first
                            await websocket.close(code=1008, reason="session ended")
                    return

        task = asyncio.create_task(check(), name="fastapi_sessions WebSocket session check")
        try:
            yield request_session.model  # type: ignore[misc]  # built from this manager's model
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _conflict_response(request: Request, exc: Exception) -> Response:
    return error_response(CONFLICT, str(exc))


def _event_type(kind: type[SessionEvent] | EventKind) -> type[SessionEvent]:
    if isinstance(kind, str):
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event kind {kind!r}; the kinds are {', '.join(EVENT_TYPES)}")
        return EVENT_TYPES[kind]
    return kind
