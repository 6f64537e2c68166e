"""Reading the session cookie from a request and writing the Set-Cookie header."""

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any

from fastapi_sessions.settings import SessionSettings

__all__ = ["CookieReader", "CookieWriter"]

logger = logging.getLogger("fastapi_sessions")

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
        self._warn_on_plain_http = settings.https_only is True if secure is None else secure
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

    def check_transport(self, scope: Mapping[str, Any]) -> None:
        """Log, once, that the ``Secure`` cookie goes out on a plain-http request to a host other than this machine.

        A browser on such a page drops the cookie, so its user is anonymous on every request. The
        usual cause is a TLS proxy whose ``X-Forwarded-Proto`` the server ignores. ``localhost`` and
        loopback addresses are left alone: browsers keep ``Secure`` cookies there over http.

        Args:
            scope: The ASGI scope of the request whose response sets or clears the cookie.
        """
        if not self._warn_on_plain_http or scope.get("scheme") != "http":
            return
        host = _host(scope.get("headers", ()))
        if host is None or _is_loopback(host):
            return
        self._warn_on_plain_http = False
        logger.warning(
            "the Secure cookie %s was sent over plain http to %s, where a browser drops it: its user stays "
            "anonymous, and a login does not stick. Behind a TLS proxy, have the proxy send "
            "X-Forwarded-Proto and run uvicorn with --proxy-headers --forwarded-allow-ips=<the proxy's address> "
            "(gunicorn: --forwarded-allow-ips); serving http on purpose, set SESSION_HTTPS_ONLY=false. "
            "Logged once per process.",
            self._name,
            host,
        )


def _host(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The host name of the request's ``Host`` header, without its port; ``None`` without one."""
    for name, value in headers:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1:].partition("]")[0]
            return host.rpartition(":")[0] if ":" in host else host
    return None


def _is_loopback(host: str) -> bool:
    """Whether a browser counts ``host`` as this machine (a secure context even over http)."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
