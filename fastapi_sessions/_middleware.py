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
            try:
                await self.app(scope, receive, send)
            finally:
                RequestSession.release(scope, self.core)
            return
        core = self.core
        RequestSession.install(scope, core)
        replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of a response that was replaced by an error
            if message["type"] == "http.response.start":
                request_session = RequestSession.pending(scope, core)
                if request_session is not None:
                    try:
                        extra = await request_session.commit() if message["status"] < 500 else []
                    except StoreUnavailableError as exc:
                        logger.error("session store unavailable while saving the session: %s", str(exc))
                        replaced = True
                        await send_error(send, STORE_UNAVAILABLE, retry_after=core.settings.retry_after)
                        return
                    except (SessionConflictError, SessionLimitError) as exc:
                        replaced = True
                        await send_error(send, CONFLICT, str(exc))
                        return
                    except SessionEncodingError as exc:
                        logger.warning("session not saved: %s", exc)
                        replaced = True
                        await send_error(send, UNPROCESSABLE, str(exc))
                        return
                    # A copy, never the app's list: a Response object the app reuses across requests
                    # must not collect one user's Set-Cookie for the next.
                    headers = list(message.get("headers", ()))
                    _add_vary_cookie(headers)
                    if extra:
                        core.cookie_writer.check_transport(scope)
                        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", b"no-store"))
                        headers.extend(extra)
                    elif request_session.stored_user_id is not None and not _has(headers, b"cache-control"):
                        # A page made for a logged-in user is kept by no shared cache nor the back button.
                        headers.append((b"cache-control", b"private, no-store"))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        finally:
            RequestSession.release(scope, core)


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"cookie" not in value.lower() and value.strip() != b"*":
                headers[index] = (name, value + b", Cookie")
            return
    headers.append((b"vary", b"Cookie"))
