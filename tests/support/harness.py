"""A `Harness`: an app under test with its manager, a `CountingStore` over the backend's store and a clock.

Every `Browser` of a harness shares its one `TestClient` (so one event loop, which network stores
need) and sends only its own cookie.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from fastapi_sessions import SessionInfo, SessionManager, SessionStore, StoredSession
from tests.support.app import UserSession, build_app
from tests.support.backend import Backend
from tests.support.browser import BASE_URL, Browser, client
from tests.support.counting_store import CountingStore
from tests.support.manager import FakeClock, make_manager

T = TypeVar("T")
SessionT = TypeVar("SessionT", bound=UserSession)


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
    return unsigned.key


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
class Harness(Generic[SessionT]):
    """An app under test with its manager, counting store, clock and HTTP client."""

    sessions: SessionManager[SessionT]
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
    backend: Backend,
    model: type[SessionT],
    routes: Callable[[SessionManager[SessionT]], APIRouter] | None = None,
    **overrides: Any,
) -> Iterator[Harness[SessionT]]:
    """Serve the test app over a counting wrapper of the backend's store, with a fake clock.

    Args:
        backend: The store under test.
        model: The session model: `UserSession` or a subclass with the fields a test needs.
        routes: Builds the routes a test adds for its own model's fields, from the manager.
        **overrides: `SessionSettings` fields.
    """
    clock = FakeClock()
    store = CountingStore(backend.make_store())
    sessions = make_manager(model, store, clock=clock, **overrides)
    app = build_app(sessions, routes(sessions) if routes is not None else None)
    with client(app) as test_client:
        yield Harness(sessions, store, clock, test_client)
