"""Reading the session cookie from a request and writing the Set-Cookie header."""

from collections.abc import Iterable
from email.utils import formatdate

from fastapi_sessions.settings import SessionSettings

__all__ = ["CookieReader", "CookieWriter"]

# Browsers cap a cookie header at about 4 KB a cookie; a request carrying far more is hostile or
# broken, and is not parsed at all.
_MAX_COOKIE_HEADER = 16 * 1024


class CookieReader:
    """Finds the session cookie in the raw ``Cookie`` headers of an ASGI scope."""

    def __init__(self, cookie_name: str) -> None:
        self._prefix = cookie_name.encode("latin-1") + b"="

    def read(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, int]:
        """Return ``(value, count)``: the cookie's value and how many cookies of that name were sent.

        Only a request with exactly one cookie of the name yields a value: two (cookie tossing from a
        sibling subdomain, or a stale cookie of another path) make the session ambiguous.
        """
        prefix = self._prefix
        found: str | None = None
        count = 0
        total = 0
        for name, value in headers:
            if name != b"cookie":
                continue
            total += len(value)
            if total > _MAX_COOKIE_HEADER:
                return None, 0
            if prefix not in value:
                continue
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    count += 1
                    found = part[len(prefix) :].decode("latin-1")
        if count != 1:
            return None, count
        return found, 1


class CookieWriter:
    """Builds the Set-Cookie header values for the session cookie."""

    def __init__(self, settings: SessionSettings, *, secure: bool | None = None, name: str | None = None) -> None:
        """
        Args:
            settings: The cookie's attributes.
            secure: Whether to set ``Secure``; ``None`` for ``https_only``.
            name: The cookie's name; ``None`` for ``session_cookie_name``.
        """
        attributes = [f"Path={settings.path}"]
        if settings.domain:
            attributes.append(f"Domain={settings.domain}")
        if settings.https_only if secure is None else secure:
            attributes.append("Secure")
        if settings.http_only:
            attributes.append("HttpOnly")
        attributes.append(f"SameSite={settings.same_site.capitalize()}")
        if settings.partitioned:
            # CHIPS; on the clearing header too, or the browser would not match the partitioned cookie.
            attributes.append("Partitioned")
        self._name = settings.session_cookie_name if name is None else name
        self._persistent = settings.persistent
        self._attributes = "; ".join(attributes)
        self._clear = f"{self._name}=; Max-Age=0; Expires={formatdate(0, usegmt=True)}; {self._attributes}".encode(
            "latin-1"
        )

    def set(self, value: str, max_age: int, *, persistent: bool | None = None) -> bytes:
        """The header value setting the cookie to ``value`` for ``max_age`` seconds.

        Args:
            value: The signed cookie value.
            max_age: Seconds the browser keeps a persistent cookie.
            persistent: Whether the cookie gets a Max-Age at all; ``None`` for ``SESSION_PERSISTENT``.
                Without one it is a browser-session cookie.
        """
        if not (self._persistent if persistent is None else persistent):
            return f"{self._name}={value}; {self._attributes}".encode("latin-1")
        return f"{self._name}={value}; Max-Age={max_age}; {self._attributes}".encode("latin-1")

    def clear(self) -> bytes:
        """The header value expiring the cookie, with the same name, path and domain it was set with."""
        return self._clear
