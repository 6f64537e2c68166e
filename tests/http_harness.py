"""Driving an app as browsers would: per-browser cookies, parsed ``Set-Cookie`` headers and a harness.

A `Harness` holds an app under test with its manager, a `CountingStore` over the backend's store, a
`FakeClock` and one `TestClient`; every `Browser` shares that client (so one event loop, which
network stores need) and sends only its own cookie.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from starlette.applications import Starlette
from starlette.routing import Mount

from fastapi_sessions import SessionInfo, SessionManager, SessionModel, SessionStore, StoredSession
from fastapi_sessions.signing import store_key
from tests.support import BASE_URL, Backend, CountingStore, FakeClock, client, make_manager, set_cookies

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=SessionModel)


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header: attribute names lowercased, flags mapped to ``""``."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> "SetCookie":
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes = {}
        for part in rest:
            key, _, attribute = part.strip().partition("=")
            attributes[key.lower()] = attribute
        return cls(name, value, attributes)

    @property
    def max_age(self) -> int | None:
        value = self.attributes.get("max-age")
        return int(value) if value is not None else None

    @property
    def scope(self) -> tuple[str, str | None, str | None]:
        """What a browser matches to replace or expire a cookie: name, path and domain."""
        return self.name, self.attributes.get("path"), self.attributes.get("domain")


def parsed_cookies(response: Response) -> list[SetCookie]:
    return [SetCookie.parse(header) for header in set_cookies(response)]


def assert_no_new_cookie(response: Response) -> None:
    """A request whose cookie named no live session gets no cookie back, at most the old one expired."""
    assert all(cookie.max_age == 0 and cookie.value == "" for cookie in parsed_cookies(response)), response.headers


class Browser:
    """One browser: its own session cookie and User-Agent, over a shared `TestClient`.

    Several browsers share one client (so one event loop, which network stores need), each
    sending only its own cookie. A ``Max-Age=0`` answer expires the cookie, as a browser would.
    """

    def __init__(self, test_client: TestClient, cookie_name: str, user_agent: str = "test-browser/1.0") -> None:
        self.client = test_client
        self.cookie_name = cookie_name
        self.user_agent = user_agent
        self.cookie: str | None = None

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str | bytes] | None = None, **kwargs: Any
    ) -> Response:
        sent = {b"user-agent": self.user_agent.encode()}
        if self.cookie is not None:
            sent[b"cookie"] = f"{self.cookie_name}={self.cookie}".encode()
        for name, value in (headers or {}).items():
            sent[name.lower().encode()] = value if isinstance(value, bytes) else value.encode()
        self.client.cookies.clear()
        response = self.client.request(method, url, headers=sent, **kwargs)
        self.client.cookies.clear()
        for cookie in parsed_cookies(response):
            if cookie.name == self.cookie_name:
                self.cookie = None if cookie.max_age == 0 else cookie.value
        return response

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def replay(self, method: str, url: str, cookie: str, **kwargs: Any) -> Response:
        """Send a request with ``cookie`` (e.g. a stolen or stale one) without changing this browser's own."""
        kept = self.cookie
        self.cookie = cookie
        try:
            return self.request(method, url, **kwargs)
        finally:
            self.cookie = kept


def run(test_client: TestClient, operation: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine in the app's event loop (where the store's connections live)."""
    portal = test_client.portal
    assert portal is not None, "use the client inside its `with` block"

    async def call() -> T:
        return await operation()

    return portal.call(call)


def key_of(manager: SessionManager[Any], cookie: str) -> str:
    """The store key of the session a cookie names."""
    unsigned = manager.signer.unsign(cookie)
    assert unsigned is not None
    return store_key(unsigned.session_id)


def stored(test_client: TestClient, store: SessionStore, manager: SessionManager[Any], cookie: str) -> Any:
    """The raw record the store holds for ``cookie``, or ``None``."""
    return run(test_client, lambda: store.load(key_of(manager, cookie)))


@contextmanager
def serve_together(store: SessionStore, apps: Mapping[str, FastAPI]) -> Iterator[TestClient]:
    """Serve several apps (e.g. one per deployment's settings) over one store, opened once, in one client."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with store:
            yield

    root = Starlette(routes=[Mount(prefix, app=app) for prefix, app in apps.items()], lifespan=lifespan)
    with TestClient(root, base_url=BASE_URL) as test_client:
        yield test_client


@dataclass
class Harness(Generic[ModelT]):
    """An app under test with its manager, counting store, clock and HTTP client."""

    sessions: SessionManager[ModelT]
    store: CountingStore
    clock: FakeClock
    client: TestClient

    def browser(self, user_agent: str = "test-browser/1.0") -> Browser:
        return Browser(self.client, self.sessions.cookie_name, user_agent)

    def login(self, uid: str, user_agent: str = "test-browser/1.0") -> Browser:
        """A new browser logged in as ``uid`` through the app's ``POST /login?uid=``."""
        browser = self.browser(user_agent)
        assert browser.post("/login", params={"uid": uid}).status_code == 200
        return browser

    def record(self, cookie: str) -> StoredSession | None:
        """What the store itself holds for ``cookie``, read past the counting wrapper."""
        result: StoredSession | None = stored(self.client, self.store.inner, self.sessions, cookie)
        return result

    def list_sessions(self, uid: str) -> list[SessionInfo]:
        return run(self.client, lambda: self.sessions.list_sessions(uid))

    def revoke_all(self, uid: str) -> int:
        return run(self.client, lambda: self.sessions.revoke_all_sessions(uid))


@contextmanager
def serve(
    backend: Backend, model: type[ModelT], build_app: Callable[[SessionManager[ModelT]], FastAPI], **overrides: Any
) -> Iterator[Harness[ModelT]]:
    """Serve ``build_app`` over a counting wrapper of the backend's store, with a fake clock.

    Args:
        backend: The store under test.
        model: The session model.
        build_app: Builds the app from its manager.
        **overrides: `SessionSettings` fields.
    """
    clock = FakeClock()
    store = CountingStore(backend.make_store())
    sessions = make_manager(model, store, clock=clock, **overrides)
    with client(build_app(sessions)) as test_client:
        yield Harness(sessions, store, clock, test_client)
