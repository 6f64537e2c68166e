"""The ASGI middleware that commits each request's session as its response starts."""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_sessions._core import SessionCore
from fastapi_sessions._request import RequestSession
from fastapi_sessions._responses import CONFLICT, STORE_UNAVAILABLE, UNPROCESSABLE, send_error
from fastapi_sessions.exceptions import (
    SessionConflictError,
    SessionEncodingError,
    SessionLimitError,
    StoreUnavailableError,
)

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("fastapi_sessions")


class SessionMiddleware:
    """Saves the session before the response is sent and puts the cookie on whatever the route returned.

    A route that never asks for its session goes through untouched: no store I/O, no header. The
    commit runs when the response starts, so a client that follows a redirect at once sees the new
    state, and it works the same for a model, a dict, a `RedirectResponse` or a `StreamingResponse`.
    Installed by `SessionManager.install`.
    """

    def __init__(self, app: ASGIApp, core: SessionCore) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http":
            if scope_type != "websocket":
                await self.app(scope, receive, send)
                return
            RequestSession.install(scope, self.core)
            events = self.core.events.begin(scope)
            try:
                await self.app(scope, receive, send)
            finally:
                RequestSession.release(scope, self.core)
                if events is not None:
                    await self.core.events.finish(events, sent=False)
            return
        core = self.core
        RequestSession.install(scope, core)
        # The lifecycle events of this request wait for its response to be sent (None: no listener).
        events = core.events.begin(scope)
        replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of a response that was replaced by an error
            if message["type"] == "http.response.start":
                request_session = RequestSession.pending(scope, core)
                if request_session is not None:
                    try:
                        if message["status"] >= 500:
                            extra = []
                        elif core.telemetry.active:
                            with core.telemetry.commit_span():
                                extra = await request_session.commit()
                        else:
                            extra = await request_session.commit()
                    except StoreUnavailableError as exc:
                        logger.error("session store unavailable while saving the session: %s", str(exc))
                        core.telemetry.commit("failed")
                        replaced = True
                        await send_error(send, STORE_UNAVAILABLE, retry_after=core.settings.retry_after)
                        return
                    except (SessionConflictError, SessionLimitError) as exc:
                        core.telemetry.commit("conflict" if isinstance(exc, SessionConflictError) else "failed")
                        replaced = True
                        await send_error(send, CONFLICT, str(exc))
                        return
                    except SessionEncodingError as exc:
                        logger.warning("session not saved: %s", exc)
                        core.telemetry.commit("failed")
                        replaced = True
                        await send_error(send, UNPROCESSABLE, str(exc))
                        return
                    # A copy, never the app's list: a Response object the app reuses across requests
                    # must not collect one user's Set-Cookie for the next.
                    headers = list(message.get("headers", ()))
                    _add_vary(headers, core.transport.vary)
                    if extra:
                        core.transport.check_transport(scope, request_session.token_via)
                        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", b"no-store"))
                        headers.extend(extra)
                    elif request_session.stored_user_id is not None and not _has(headers, b"cache-control"):
                        # A page made for a logged-in user is kept by no shared cache nor the back button.
                        headers.append((b"cache-control", b"private, no-store"))
                    message = {**message, "headers": headers}
            await send(message)

        sent = False
        try:
            await self.app(scope, receive, send_with_session)
            sent = True
        finally:
            RequestSession.release(scope, core)
            if events is not None:
                await core.events.finish(events, sent=sent)


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _add_vary(headers: list[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> None:
    """Name the request headers the session came from (``Cookie``, the token header) in ``Vary``."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if value.strip() != b"*":
                listed = {part.strip().lower() for part in value.split(b",")}
                missing = [wanted for wanted in names if wanted.lower() not in listed]
                if missing:
                    headers[index] = (name, b", ".join([value, *missing]))
            return
    headers.append((b"vary", b", ".join(names)))
