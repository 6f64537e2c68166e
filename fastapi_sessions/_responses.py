"""The error answers the library itself sends: 503 when the store is unreachable, 409 on a conflict.

One shape for both moments they happen: while a route loads its session (an exception handler
returns a `Response`) and while the response starts (the middleware sends ASGI messages).
"""

import json

from starlette.responses import Response
from starlette.types import Send

__all__ = ["CONFLICT", "STORE_UNAVAILABLE", "UNPROCESSABLE", "error_response", "send_error"]

STORE_UNAVAILABLE = 503
CONFLICT = 409
UNPROCESSABLE = 422
_DETAIL_UNAVAILABLE = "Session store unavailable"


def _body_and_headers(status: int, detail: str | None, retry_after: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    if status == STORE_UNAVAILABLE:
        detail = _DETAIL_UNAVAILABLE
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"vary", b"Cookie"),
    ]
    if status == STORE_UNAVAILABLE:
        headers.append((b"retry-after", str(retry_after).encode()))
    return body, headers


def error_response(status: int, detail: str | None = None, *, retry_after: int = 0) -> Response:
    """The answer as a `Response`, for exception handlers."""
    body, headers = _body_and_headers(status, detail, retry_after)
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


async def send_error(send: Send, status: int, detail: str | None = None, *, retry_after: int = 0) -> None:
    """Send the answer as ASGI messages, in place of a response that has not started."""
    body, headers = _body_and_headers(status, detail, retry_after)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
