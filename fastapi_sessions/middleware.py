"""The ASGI middleware that commits each request's session as its response starts."""

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_sessions.context import INSTALLED, RequestSession
from fastapi_sessions.exceptions import SessionConflictError, SessionLimitError, StoreUnavailableError

if TYPE_CHECKING:
    from fastapi_sessions.manager import SessionManager

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("fastapi_sessions")


class SessionMiddleware:
    """Saves the session before the response is sent and puts the cookie on whatever the route returned.

    A route that never asks for its session goes through untouched: no store I/O, no header. The
    commit runs when the response starts, so a client that follows a redirect at once sees the new
    state, and it works the same for a model, a dict, a `RedirectResponse` or a `StreamingResponse`.
    Installed by `SessionManager.install`.
    """

    def __init__(self, app: ASGIApp, manager: "SessionManager[Any]") -> None:
        self.app = app
        self.manager = manager
        self.scope_key = manager.scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http":
            if scope_type != "websocket":
                await self.app(scope, receive, send)
                return
            scope[self.scope_key] = INSTALLED
            try:
                await self.app(scope, receive, send)
            finally:
                _release(scope, self.scope_key)
            return
        scope_key = self.scope_key
        scope[scope_key] = INSTALLED  # the dependency puts a RequestSession here on first use
        replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of a response that was replaced by an error
            if message["type"] == "http.response.start":
                request_session = scope[scope_key]
                if request_session is not INSTALLED and request_session.model is not None:
                    status = message["status"]
                    try:
                        extra = await request_session.commit() if status < 500 else []
                    except StoreUnavailableError as exc:
                        logger.error("session store unavailable while saving the session: %s", str(exc))
                        replaced = True
                        await self._send_error(send, 503, "Session store unavailable", retry_after=True)
                        return
                    except (SessionConflictError, SessionLimitError) as exc:
                        replaced = True
                        await self._send_error(send, 409, str(exc))
                        return
                    # A copy, never the app's list: a Response object the app reuses across requests
                    # must not collect one user's Set-Cookie for the next.
                    headers = list(message.get("headers", ()))
                    _add_vary_cookie(headers)
                    if extra:
                        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", b"no-store"))
                        headers.extend(extra)
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        finally:
            _release(scope, self.scope_key)

    async def _send_error(self, send: Send, status: int, detail: str, *, retry_after: bool = False) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"vary", b"Cookie"),
        ]
        if retry_after:
            headers.append((b"retry-after", str(self.manager.settings.retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _release(scope: Scope, scope_key: str) -> None:
    # The request session, its scope and its model refer to each other; undone here, they are freed
    # as the request ends instead of piling up for the cyclic garbage collector, whose full
    # collections would otherwise stall the server for milliseconds (the p99 of a busy worker).
    request_session = scope.pop(scope_key, None)
    if isinstance(request_session, RequestSession):
        request_session.release()


def _add_vary_cookie(headers: list[tuple[bytes, bytes]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"cookie" not in value.lower() and value.strip() != b"*":
                headers[index] = (name, value + b", Cookie")
            return
    headers.append((b"vary", b"Cookie"))
