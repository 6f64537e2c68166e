"""`EventHub`: hands lifecycle events to the listeners registered on a manager, after the response.

Events of an HTTP request wait in a `Batch` until the app has sent its response, then each listener
runs in turn, within ``timeout``. Events with no HTTP request to wait for (a script revoking
sessions, a WebSocket) run at once as tasks, which the hub keeps until they end and waits for when
the store closes. A listener that raises or overruns is logged and changes nothing else. With no
listener registered, `EventHub.emit` only counts the step for the metrics: no event, no task.
"""

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.types import Scope

from fastapi_sessions._logs import printable
from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions.events import (
    EventKind,
    SessionCreated,
    SessionDestroyed,
    SessionEvent,
    SessionExpired,
    SessionRegenerated,
    SessionRejected,
    SessionRevoked,
)

__all__ = ["EVENT_TYPES", "Batch", "EventHub", "Listener"]

logger = logging.getLogger("fastapi_sessions")

Listener = Callable[[Any], Awaitable[None] | None]
"""A function of one event, sync (run in a worker thread) or async."""

EVENT_TYPES: dict[EventKind, type[SessionEvent]] = {
    cls.kind: cls
    for cls in (SessionCreated, SessionRegenerated, SessionDestroyed, SessionExpired, SessionRevoked, SessionRejected)
}


@dataclass(eq=False, slots=True)
class Batch:
    """The events of one request, with the request they came from."""

    scope: Scope
    defer: bool
    """Hold the events until the response is sent (HTTP), or run them at once (WebSocket)."""
    events: list[tuple["_Registration", SessionEvent]] = field(default_factory=list)


_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("fastapi_sessions.events", default=None)


@dataclass(frozen=True, slots=True, eq=False)
class _Registration:
    event_type: type[SessionEvent]
    listener: Listener
    is_async: bool
    name: str


class EventHub:
    """The listeners of one manager, and the running of them.

    Args:
        clock: The manager's clock (read on each event: tests move it).
        telemetry: Counts each step, listened to or not.
        timeout: Seconds each listener may take with one event.
    """

    __slots__ = ("_registrations", "_tasks", "clock", "telemetry", "timeout")

    def __init__(self, clock: Callable[[], float], telemetry: Telemetry, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"listener_timeout must be positive, got {timeout!r}")
        self.clock = clock
        self.telemetry = telemetry
        self.timeout = timeout
        self._registrations: list[_Registration] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # Registration.

    def add(self, event_type: type[SessionEvent], listener: Listener) -> None:
        if not (isinstance(event_type, type) and issubclass(event_type, SessionEvent)):
            raise TypeError(
                f"listen to an event kind ({', '.join(EVENT_TYPES)}) or SessionEvent class, not {event_type!r}"
            )
        name = getattr(listener, "__qualname__", None) or repr(listener)
        self._registrations.append(_Registration(event_type, listener, _is_async(listener), name))

    def remove(self, event_type: type[SessionEvent], listener: Listener) -> None:
        for registration in self._registrations:
            if registration.event_type is event_type and registration.listener == listener:
                self._registrations.remove(registration)
                return
        raise ValueError(f"{listener!r} is not listening to {event_type.__name__}")

    # A request's batch.

    def begin(self, scope: Scope) -> contextvars.Token[Batch | None] | None:
        """Collect the events of the request in ``scope``; ``None`` (nothing to do) with no listener."""
        if not self._registrations:
            return None
        return _batch.set(Batch(scope, defer=scope["type"] == "http"))

    async def finish(self, token: contextvars.Token[Batch | None], *, sent: bool) -> None:
        """Run the request's events once its response is sent; hand them to tasks if it ended otherwise.

        A request that fails or is cancelled may not await anything more, so its events run as tasks.
        """
        batch = _batch.get()
        _batch.reset(token)
        if batch is None or not batch.events:
            return
        if not sent:
            for registration, event in batch.events:
                self._spawn(registration, event)
            return
        for registration, event in batch.events:
            await self._run(registration, event)

    # Events.

    def emit(
        self,
        kind: EventKind,
        scope: Scope | None,
        handle: str | None,
        user_id: str | None,
        reason: str | None,
        **fields: Any,
    ) -> None:
        """Report one step of a session's life (after the store write it reports)."""
        self.telemetry.session(kind, reason)
        if not self._registrations:
            return
        event_type = EVENT_TYPES[kind]
        listening = [item for item in self._registrations if issubclass(event_type, item.event_type)]
        if not listening:
            return
        batch = _batch.get()
        if scope is None and batch is not None:
            scope = batch.scope
        event = event_type(
            handle=handle, user_id=user_id, reason=reason, time=self.clock(), **_request_fields(scope), **fields
        )
        for registration in listening:
            if batch is not None and batch.defer and batch.scope is scope:
                batch.events.append((registration, event))
            else:
                self._spawn(registration, event)

    async def close(self) -> None:
        """Wait for the listeners still running (each ends within the timeout)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # Running a listener.

    def _spawn(self, registration: _Registration, event: SessionEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._run(registration, event))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _run(self, registration: _Registration, event: SessionEvent) -> None:
        listener = registration.listener
        try:
            async with asyncio.timeout(self.timeout):
                if registration.is_async:
                    await listener(event)  # type: ignore[misc]  # an async listener returns an awaitable
                else:
                    await anyio.to_thread.run_sync(listener, event, abandon_on_cancel=True)
        except TimeoutError:
            logger.error(
                "session event listener %s timed out after %g s on a %s event (listener_timeout)",
                registration.name,
                self.timeout,
                event.kind,
            )
        except Exception:
            logger.exception("session event listener %s failed on a %s event", registration.name, event.kind)


def _is_async(listener: Listener) -> bool:
    while isinstance(listener, functools.partial):
        listener = listener.func
    return inspect.iscoroutinefunction(listener) or inspect.iscoroutinefunction(getattr(listener, "__call__", None))  # noqa: B004


def _request_fields(scope: Scope | None) -> dict[str, str | None]:
    if scope is None:
        return {}
    agent = None
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            agent = printable(value.decode("latin-1"))
            break
    client = scope.get("client")
    return {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "client_ip": client[0] if client else None,
        "user_agent": agent,
    }
