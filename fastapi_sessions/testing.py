"""Helpers for testing apps that use fastapi_sessions: a client logged in without a login route, a fake clock.

`force_login` and `seed_session` store a session exactly as a request's commit would (the record,
its metadata, the per-user index and limit) and put its cookie in the client's cookie jar, as if the
app had answered with it; `read_session` loads the session the client's cookie names. Each takes
the client the test already has:

- a `fastapi.testclient.TestClient`: the helper returns the session. The store work runs on the
  client's event loop when the client was started with ``with TestClient(app) as client:``, where
  a network store keeps its connections; an unstarted client works only with an in-process store
  (`MemoryStore`), on an event loop of the call's own.
- an ``httpx.AsyncClient`` (or ``httpx2.AsyncClient``) over ``ASGITransport``: the helper returns
  an awaitable of the session, run on the test's event loop, which is the app's.

The library's cookie is ``Secure`` by default, and a client sends a Secure cookie only over https:
create the client with ``base_url="https://testserver"`` (or turn ``https_only`` off in the test's
settings). The helpers refuse an http base URL for a Secure cookie rather than store a session the
client would never send.
"""

from __future__ import annotations

import email.message
import http.client
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast, overload
from urllib.parse import urlsplit, urlunsplit

import anyio.from_thread

from fastapi_sessions.manager import SessionManager
from fastapi_sessions.model import AuthSession, SessionModel

try:
    from starlette.testclient import TestClient
except (ImportError, RuntimeError) as exc:  # Starlette raises RuntimeError when no HTTP client is installed
    raise ImportError(
        "fastapi_sessions.testing needs the HTTP client of Starlette's TestClient: "
        "pip install 'fastapi-sessions-typed[test]'"
    ) from exc

if TYPE_CHECKING:
    import httpx
    import httpx2

    AsyncClient: TypeAlias = httpx.AsyncClient | httpx2.AsyncClient

__all__ = ["FakeClock", "force_login", "read_session", "seed_session"]

ModelT = TypeVar("ModelT", bound=SessionModel)
AuthT = TypeVar("AuthT", bound=AuthSession)
T = TypeVar("T")


class FakeClock:
    """A clock a test moves by hand, to reach an idle or absolute timeout without sleeping.

    Give it to the manager, ``SessionManager(UserSession, clock=clock)``, or to one already built,
    ``monkeypatch.setattr(sessions, "clock", clock)`` (undone after the test).

    Args:
        start: The time it shows first, in seconds since the epoch; the current time by default.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds


@overload
def force_login(
    client: TestClient, sessions: SessionManager[AuthT], user_id: str, roles: Iterable[str] = (), **fields: Any
) -> AuthT: ...


@overload
def force_login(
    client: AsyncClient, sessions: SessionManager[AuthT], user_id: str, roles: Iterable[str] = (), **fields: Any
) -> Awaitable[AuthT]: ...


def force_login(
    client: TestClient | AsyncClient,
    sessions: SessionManager[AuthT],
    user_id: str,
    roles: Iterable[str] = (),
    **fields: Any,
) -> AuthT | Awaitable[AuthT]:
    """Log ``client`` in as ``user_id`` without a login route: a new stored session and its cookie in the jar.

    The session is what ``session.login(user_id, roles)`` in a route would store: a new session
    ID, ``authenticated_at`` now by the manager's clock, a CSRF token, the per-user index (so
    `SessionManager.list_sessions` and the revoke methods see it) and the per-user limit. Each call
    starts a new session; the cookie the client held before is replaced.

    Args:
        client: A `TestClient` (the session is returned) or an ``httpx.AsyncClient`` (awaitable).
        sessions: The app's manager; its model subclasses `AuthSession`.
        user_id: The user to log in.
        roles: The user's roles.
        **fields: Other fields of the session model, set after the login (``authenticated_at``
            to test a step-up guard, ``pending_factors`` for a partial login).

    Returns:
        The session as the app's next request will load it. Reading its ``handle`` and
        ``csrf_token`` works; changing it saves nothing.

    Raises:
        RuntimeError: the cookie would not be sent by the client (a Secure cookie and an http base
            URL, or a ``domain`` setting the base URL's host does not match), or the client is not
            started and the store is not in-process.
        SessionLimitError: the user is at ``max_sessions_per_user`` with ``limit_policy`` ``refuse``.
    """
    if not issubclass(sessions.model_cls, AuthSession):
        name = sessions.model_cls.__name__
        raise TypeError(f"force_login needs a session model that subclasses AuthSession; {name} does not")
    role_names = tuple(roles)

    def prepare(session: AuthT) -> None:
        session.login(user_id, role_names)
        _assign(session, fields)

    return _issue(client, sessions, prepare)


@overload
def seed_session(client: TestClient, sessions: SessionManager[ModelT], **fields: Any) -> ModelT: ...


@overload
def seed_session(client: AsyncClient, sessions: SessionManager[ModelT], **fields: Any) -> Awaitable[ModelT]: ...


def seed_session(
    client: TestClient | AsyncClient, sessions: SessionManager[ModelT], **fields: Any
) -> ModelT | Awaitable[ModelT]:
    """Give ``client`` a stored session holding ``fields``, not logged in, as if a route had set them.

    Like `force_login` without the login: each call starts a new session (with a CSRF token, even
    with no ``fields``), replacing the cookie the client held.

    Args:
        client: A `TestClient` (the session is returned) or an ``httpx.AsyncClient`` (awaitable).
        sessions: The app's manager.
        **fields: Fields of the session model, validated as an assignment in a route is.

    Returns:
        The session as the app's next request will load it.

    Raises:
        RuntimeError: as `force_login`.
    """
    return _issue(client, sessions, lambda session: _assign(session, fields))


@overload
def read_session(client: TestClient, sessions: SessionManager[ModelT]) -> ModelT | None: ...


@overload
def read_session(client: AsyncClient, sessions: SessionManager[ModelT]) -> Awaitable[ModelT | None]: ...


def read_session(
    client: TestClient | AsyncClient, sessions: SessionManager[ModelT]
) -> ModelT | Awaitable[ModelT | None] | None:
    """The session the client's next request would carry, as the store holds it; ``None`` without one.

    ``None`` also where a request would start a new session: no cookie (or two), a cookie that does
    not verify, a session that is unknown, expired by the manager's clock, or logged out. Reading
    writes nothing: the session's idle timeout does not restart.

    Args:
        client: A `TestClient` (the session is returned) or an ``httpx.AsyncClient`` (awaitable).
        sessions: The app's manager.

    Raises:
        RuntimeError: as `force_login`.
    """
    _check_client(client, sessions)
    cookie = _cookie_sent(client, sessions)

    async def read() -> ModelT | None:
        return None if cookie is None else await sessions.load_session(cookie)

    if isinstance(client, TestClient):
        return _run(client, sessions, read)
    return read()


def _assign(session: SessionModel, fields: dict[str, Any]) -> None:
    declared = type(session).model_fields
    for name, value in fields.items():
        if name not in declared:
            raise TypeError(f"{type(session).__name__} has no field {name!r}; its fields are {', '.join(declared)}")
        setattr(session, name, value)


def _issue(
    client: TestClient | AsyncClient, sessions: SessionManager[ModelT], prepare: Callable[[ModelT], object]
) -> ModelT | Awaitable[ModelT]:
    _check_client(client, sessions)
    user_agent = client.headers.get("user-agent")

    async def issue() -> ModelT:
        session, set_cookie = await sessions.create_session(prepare, user_agent=user_agent)
        _put_cookie(client, sessions, set_cookie)
        return session

    if isinstance(client, TestClient):
        return _run(client, sessions, issue)
    return issue()


def _run(client: TestClient, sessions: SessionManager[Any], work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on the started client's event loop, or on one of its own for an in-process store."""

    async def call() -> T:
        return await work()

    if client.portal is not None:
        return client.portal.call(call)
    if not sessions.store.in_process:
        raise RuntimeError(
            f"start the TestClient first (with TestClient(app, base_url='https://testserver') as client: ...): "
            f"{type(sessions.store).__name__} keeps its connections on the app's event loop, which runs inside "
            "the with block; only an in-process store such as MemoryStore works without it"
        )
    with anyio.from_thread.start_blocking_portal(**client.async_backend) as portal:
        return portal.call(call)


def _check_client(client: object, sessions: SessionManager[Any]) -> None:
    jar = getattr(getattr(client, "cookies", None), "jar", None)
    if not isinstance(client, TestClient) and (jar is None or not hasattr(client, "base_url")):
        raise TypeError(
            f"expected a fastapi.testclient.TestClient or an httpx.AsyncClient, got {type(client).__name__}"
        )
    url = _cookie_url(cast("TestClient", client), sessions)
    if sessions.settings.https_only is True and urlsplit(url).scheme != "https":
        raise RuntimeError(
            f"the session cookie is Secure (SESSION_HTTPS_ONLY=true, the default) and a client does not send a "
            f"Secure cookie to {url}: create the client with base_url='https://testserver', "
            "or turn https_only off in the test's settings"
        )


def _cookie_url(client: TestClient | AsyncClient, sessions: SessionManager[Any]) -> str:
    """Where the session cookie applies: the client's base URL at the cookie's path."""
    base = urlsplit(str(client.base_url))
    return urlunsplit((base.scheme, base.netloc, sessions.settings.path, "", ""))


class _SetCookieResponse:
    """What `http.cookiejar.CookieJar.extract_cookies` reads of a response: its headers."""

    def __init__(self, set_cookie: str) -> None:
        self._headers = email.message.Message()
        self._headers["Set-Cookie"] = set_cookie

    def info(self) -> email.message.Message:
        return self._headers


def _put_cookie(client: TestClient | AsyncClient, sessions: SessionManager[Any], set_cookie: str) -> None:
    """Put the cookie in the client's jar as the client does with a response's ``Set-Cookie``."""
    url = _cookie_url(client, sessions)
    response = cast(http.client.HTTPResponse, _SetCookieResponse(set_cookie))
    client.cookies.jar.extract_cookies(response, urllib.request.Request(url))
    value = set_cookie.partition(";")[0].partition("=")[2]
    if _cookie_sent(client, sessions) != value:
        domain = sessions.settings.domain
        raise RuntimeError(
            f"the client would not send the session cookie to {url} (its cookie has Domain={domain}): "
            "give the client a base_url on that domain, or leave SESSION_DOMAIN unset in tests"
        )


def _cookie_sent(client: TestClient | AsyncClient, sessions: SessionManager[Any]) -> str | None:
    """The session cookie the client sends to the app, or ``None`` if it sends none (or two, as the app reads it)."""
    request = urllib.request.Request(_cookie_url(client, sessions))
    client.cookies.jar.add_cookie_header(request)
    sent = request.get_header("Cookie") or ""
    pairs = (part.strip().partition("=") for part in sent.split(";"))
    values = [value for name, _, value in pairs if name == sessions.cookie_name]
    return values[0] if len(values) == 1 else None
