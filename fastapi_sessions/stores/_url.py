"""`StoreUrl`: a ``SESSION_STORE_URL`` taken apart the same way for every store.

Its scheme, user, password, hosts, path and query; a redacted form for messages, which never holds
the password whatever characters it has; and the store's query options, typed and checked, with one
vocabulary for booleans and one policy for unknown options.
"""

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi_sessions.exceptions import SessionConfigError

__all__ = ["SCHEMES", "Bool", "Choice", "Float", "Int", "Option", "StoreUrl", "Text", "redact"]

SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("fastapi_sessions.stores.memory", "MemoryStore"),
    "sqlite": ("fastapi_sessions.stores.sqlite", "SQLiteStore"),
    "redis": ("fastapi_sessions.stores.redis", "RedisStore"),
    "rediss": ("fastapi_sessions.stores.redis", "RedisStore"),
    "redis+sentinel": ("fastapi_sessions.stores.redis", "RedisStore"),
    "rediss+sentinel": ("fastapi_sessions.stores.redis", "RedisStore"),
    "redis+cluster": ("fastapi_sessions.stores.redis", "RedisStore"),
    "rediss+cluster": ("fastapi_sessions.stores.redis", "RedisStore"),
    "postgresql": ("fastapi_sessions.stores.postgres", "PostgresStore"),
    "postgres": ("fastapi_sessions.stores.postgres", "PostgresStore"),
    "mongodb": ("fastapi_sessions.stores.mongodb", "MongoStore"),
    "mongodb+srv": ("fastapi_sessions.stores.mongodb", "MongoStore"),
}
"""Every URL scheme, and the module and class of the store it names."""

_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
_SECRET_OPTION = re.compile(r"((?:^|[?&;])[^=&;#]*(?:password|secret|token)[^=&;#]*=)[^&;#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` with its password, and any option named like a password, masked, for messages.

    The user information ends at the last ``@``, so a password holding ``/ ? # @ :`` or percent
    escapes is masked whole; when the user name cannot be told apart, everything up to that ``@`` is.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, sep, rest = url.partition(":")
    userinfo, at, after = rest.rpartition("@")
    if at and not rest.startswith("/"):  # an authority never begins with '/': sqlite:///a@b.db has none
        user, colon, _ = userinfo.partition(":")
        if any(char in user for char in "/?#"):
            shown = "***@"
        else:
            shown = f"{user}:***@" if colon else f"{user}@"
        rest = shown + after
    return scheme + sep + _SECRET_OPTION.sub(r"\1***", rest)


@dataclass(frozen=True)
class Option:
    """A query option a store reads: its `parse` turns the text into a value or says what is wrong."""

    def parse(self, value: str) -> Any:
        return value

    def problem(self) -> str:
        return "must be text"


@dataclass(frozen=True)
class Text(Option):
    """Any text, kept as it is."""


@dataclass(frozen=True)
class Int(Option):
    """A whole number, at least ``minimum``."""

    minimum: int = 0

    def parse(self, value: str) -> Any:
        number = int(value)
        if number < self.minimum:
            raise ValueError(value)
        return number

    def problem(self) -> str:
        return f"must be an integer of at least {self.minimum}"


@dataclass(frozen=True)
class Float(Option):
    """A finite number, at least ``minimum`` (above it when ``positive``)."""

    minimum: float = 0.0
    positive: bool = False

    def parse(self, value: str) -> Any:
        number = float(value)
        if not math.isfinite(number) or number < self.minimum or (self.positive and number <= self.minimum):
            raise ValueError(value)
        return number

    def problem(self) -> str:
        return f"must be a number {'above' if self.positive else 'of at least'} {self.minimum:g}"


@dataclass(frozen=True)
class Bool(Option):
    """``true``/``false``, ``1``/``0``, ``yes``/``no`` or ``on``/``off``, in any case."""

    def parse(self, value: str) -> Any:
        return _BOOLEANS[value.lower()]

    def problem(self) -> str:
        return "must be true or false (or 1/0, yes/no, on/off)"


@dataclass(frozen=True)
class Choice(Option):
    """One of ``choices``."""

    choices: tuple[str, ...] = ()

    def parse(self, value: str) -> Any:
        if value not in self.choices:
            raise ValueError(value)
        return value

    def problem(self) -> str:
        return f"must be one of {', '.join(self.choices)}"


class StoreUrl:
    """A store URL taken apart: ``scheme://[user[:password]@]hosts[/path][?query][#fragment]``.

    Args:
        url: The URL as configured.
        store: The store class name; the scheme must be one of that store's in `SCHEMES`.

    Raises:
        SessionConfigError: the scheme is not one of the store's. Every error this URL raises
            begins ``SESSION_STORE_URL '<the redacted URL>':``.
    """

    def __init__(self, url: str, store: str) -> None:
        self.url = url
        self.redacted = redact(url)
        scheme, sep, rest = url.partition("://")
        self.scheme = scheme.lower() if sep else ""
        own = [name for name, (_, class_name) in SCHEMES.items() if class_name == store]
        if self.scheme not in own:
            problem = f"unknown scheme {self.scheme!r}" if sep else "not a URL"
            raise self.error(f"{problem} for {store}; use one of " + ", ".join(f"{name}://" for name in own))
        userinfo, at, after = rest.rpartition("@")
        self.username: str | None = None
        self.password: str | None = None
        if at and not rest.startswith("/"):
            user, colon, password = userinfo.partition(":")
            self.username = unquote(user) or None
            self.password = unquote(password) if colon else None
            rest = after
        rest, _, self.fragment = rest.partition("#")
        rest, _, self.query = rest.partition("?")
        slash = rest.find("/")
        self.hosts_text = rest if slash < 0 else rest[:slash]
        self.path = "" if slash < 0 else rest[slash:]

    def error(self, problem: str) -> SessionConfigError:
        """The error for a problem with this URL, which names the URL without its password."""
        return SessionConfigError(f"SESSION_STORE_URL {self.redacted!r}: {problem}")

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Build the store: a `SessionConfigError` its constructor raises names this URL too."""
        try:
            yield
        except SessionConfigError as exc:
            if str(exc).startswith("SESSION_STORE_URL "):
                raise
            raise self.error(str(exc)) from None

    def hosts(self, default_port: int, default_host: str = "localhost") -> list[tuple[str, int]]:
        """The comma-separated hosts, each ``host``, ``host:port`` or ``[IPv6]:port``."""
        return [self._host_port(item, default_port) for item in (self.hosts_text or default_host).split(",")]

    def _host_port(self, item: str, default_port: int) -> tuple[str, int]:
        host, port = item, ""
        if item.startswith("["):
            host, bracket, rest = item[1:].partition("]")
            if not bracket:
                raise self.error(f"Invalid IPv6 URL: {item!r} lacks its closing ']'")
            port = rest.removeprefix(":")
        elif ":" in item:
            host, _, port = item.rpartition(":")
        if not host:
            raise self.error(f"missing host in {item!r}")
        if not port:
            return unquote(host), default_port
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise self.error(f"bad port {port!r}")
        return unquote(host), int(port)

    def userinfo(self) -> str:
        """``user:password@`` percent-escaped again (as a driver parses it), or ``""``."""
        if self.username is None and self.password is None:
            return ""
        user = quote(self.username or "", safe="")
        return f"{user}:{quote(self.password, safe='')}@" if self.password is not None else f"{user}@"

    def options(
        self,
        known: Mapping[str, Option],
        *,
        driver_takes: Callable[[str], bool] | None = None,
        fold_case: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        """The query's options: the store's own, typed, and those left for the driver.

        Args:
            known: The store's options by name, with their types.
            driver_takes: Whether the driver takes an option the store does not know; without it,
                an unknown option is refused.
            fold_case: Option names are case-insensitive (as MongoDB's are).

        Returns:
            The store's options by name, and the driver's as they were written (``name=value``).

        Raises:
            SessionConfigError: an option is unknown or has a bad value; the message lists the known ones.
        """
        values: dict[str, Any] = {}
        passed: list[str] = []
        for item in re.split(r"[&;]" if fold_case else "&", self.query):
            if not item:
                continue
            raw_name, _, raw_value = item.partition("=")
            name, value = unquote(raw_name.replace("+", " ")), unquote(raw_value.replace("+", " "))
            key = name.lower() if fold_case else name
            option = known.get(key)
            if option is not None:
                try:
                    values[key] = option.parse(value)
                except (ValueError, KeyError):
                    raise self.error(f"{key} {option.problem()}, got {value!r}") from None
            elif driver_takes is not None and driver_takes(name):
                passed.append(item)
            else:
                raise self.error(f"unknown option {name!r}; the options are " + ", ".join(sorted(known)))
        return values, passed
