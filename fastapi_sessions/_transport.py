"""How the signed session token travels: in the session cookie, in a request header, or either.

The header transport is Spring Session's ``HeaderHttpSessionIdResolver``: a client that cannot keep
cookies (a mobile app, a CLI) sends the token in a header (``X-Auth-Token``), gets a new one in the
same response header, and an empty value when the session ends. The token is the cookie's value:
the same signature, the same format check, the same store.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from fastapi_sessions._cookies import CookieReader, CookieWriter
from fastapi_sessions.settings import SessionSettings

__all__ = ["SessionTransport", "TokenRead", "Via"]

Via = Literal["cookie", "header"]
"""The way one request's token came, and so the way its response answers."""


class TokenRead(NamedTuple):
    """What a request sent, decided from its headers alone.

    Attributes:
        token: The one token to verify; ``None`` when none was sent or the request is ambiguous.
        via: Where the response sends a new token, or the end of the session.
        sent: A token came that way, valid or not (so a logout answers it).
        rejection: The log line saying why a token that was sent is not used; ``None`` otherwise.
    """

    token: str | None
    via: Via
    sent: bool
    rejection: str | None = None


class SessionTransport:
    """Reads the session token from a request and writes the headers that answer it.

    ``SESSION_TRANSPORT=cookie`` reads the cookie only; ``header`` the header only; ``both`` the
    header when a request sends it, even empty (a client without a token yet), and the cookie
    otherwise. A request with both is ambiguous and gets no session, as one with two session cookies
    does.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.mode = settings.transport
        self.header_name = settings.header_name
        self._header_key = settings.header_name.lower().encode("latin-1")
        self._cookies = CookieReader(settings.session_cookie_name)
        self._cookie_writer = CookieWriter(settings)
        if settings.https_only == "auto":  # plain-http requests: their own name, no Secure
            plain = settings.plain_http_cookie_name
            self._plain_cookies = CookieReader(plain)
            self._plain_cookie_writer = CookieWriter(settings, secure=False, name=plain)
        else:
            self._plain_cookies, self._plain_cookie_writer = self._cookies, self._cookie_writer
        header = settings.header_name.encode("latin-1")
        self.vary: tuple[bytes, ...] = {"cookie": (b"Cookie",), "header": (header,), "both": (b"Cookie", header)}[
            self.mode
        ]
        """The request headers a response that read the session depends on, for its ``Vary``."""

    def read(self, headers: Sequence[tuple[bytes, bytes]], *, https: bool = True) -> TokenRead:
        """The token of a request, from its raw ASGI headers (names lowercased, as ASGI gives them).

        ``https`` tells whether the request came over https, which picks the cookie's name under
        ``SESSION_HTTPS_ONLY=auto``.
        """
        if self.mode == "cookie":
            return self._read_cookie(headers, https)
        key = self._header_key
        values = [value.strip() for name, value in headers if name == key]
        if not values:
            return TokenRead(None, "header", False) if self.mode == "header" else self._read_cookie(headers, https)
        if self.mode == "both" and self._read_cookie(headers, https).sent:
            return TokenRead(
                None,
                "header",
                True,
                f"session rejected: both a session cookie and the {self.header_name} header were sent",
            )
        tokens = [value for value in values if value]
        if not tokens:
            # Empty: what the client was told at logout, and how it asks for the header before it has a token.
            return TokenRead(None, "header", False)
        if len(tokens) > 1:
            return TokenRead(
                None, "header", True, f"session rejected: {len(tokens)} {self.header_name} headers in one request"
            )
        return TokenRead(tokens[0].decode("latin-1"), "header", True)

    def _read_cookie(self, headers: Sequence[tuple[bytes, bytes]], https: bool) -> TokenRead:
        value, count = (self._cookies if https else self._plain_cookies).read(headers)
        if count > 1:
            return TokenRead(
                None, "cookie", True, f"session rejected: {count} session cookies in one request (cookie tossing?)"
            )
        return TokenRead(value, "cookie", count > 0)

    def describe(self, via: Via) -> str:
        """How log lines name the token of ``via``."""
        return "cookie" if via == "cookie" else f"{self.header_name} header"

    def issue(
        self, via: Via, value: str, max_age: int, *, persistent: bool | None, https: bool = True
    ) -> tuple[bytes, bytes]:
        """The response header handing the client the signed token ``value``.

        Args:
            via: The way the request came.
            value: The signed token.
            max_age: Seconds a persistent cookie lives (a header client learns the end from a 401).
            persistent: Whether the cookie gets a Max-Age; ``None`` for ``SESSION_PERSISTENT``.
            https: The request came over https (under ``SESSION_HTTPS_ONLY=auto``: ``Secure`` and its name).
        """
        if via == "header":
            return self._header_key, value.encode("latin-1")
        writer = self._cookie_writer if https else self._plain_cookie_writer
        return b"set-cookie", writer.set(value, max_age, persistent=persistent)

    def check_transport(self, scope: Mapping[str, Any], via: Via) -> None:
        """Log, once, a ``Secure`` cookie answering plain http to another host (`CookieWriter.check_transport`)."""
        if via == "cookie":
            https = scope.get("scheme") in ("https", "wss")
            (self._cookie_writer if https else self._plain_cookie_writer).check_transport(scope)

    def clear(self, via: Via, *, https: bool = True) -> tuple[bytes, bytes]:
        """The response header ending the client's session: an expired cookie, or an empty header."""
        if via == "header":
            return self._header_key, b""
        return b"set-cookie", (self._cookie_writer if https else self._plain_cookie_writer).clear()
