"""Shared pieces of the fastapi_sessions test suite: backends, clocks, apps and clients."""

import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn, TypeVar

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import (
    AuthSession,
    SessionManager,
    SessionModel,
    SessionSettings,
    SessionStore,
    StoredSession,
    UpdateResult,
)

SECRET = "test-secret-key-for-fastapi-sessions-0123456789"
OTHER_SECRET = "another-secret-key-for-fastapi-sessions-9876543210"
BASE_URL = "https://testserver"

ModelT = TypeVar("ModelT", bound=SessionModel)


@dataclass(frozen=True)
class Driver:
    """The driver a store module imports, to hide in the missing-driver test.

    Attributes:
        modules: The driver's top-level modules, e.g. ``("redis",)``.
        extra: The extra that installs it, named in the ImportError.
        store_module: The module users import the store from.
    """

    modules: tuple[str, ...]
    extra: str
    store_module: str


@dataclass
class Backend:
    """A store under test, and how the contract suite reaches into it.

    Attributes:
        name: The id the contract suite shows, e.g. ``redis`` or ``postgres``.
        make_store: Returns a new, unopened store in a namespace of its own (a fresh key prefix,
            table or collection). Called inside the test's event loop.
        url: A ``SESSION_STORE_URL`` reaching the same server, when the store has one.
        age: Makes the record under a key ``seconds`` older (its expiry that much earlier) in an
            opened store, as time passing would, without sleeping.
        dump: Everything the store holds in its namespace (keys and values), as text.
        server_expires: The server removes a record at its expiry (Redis): an expired record is
            gone, rather than still present and filtered out.
        from_url: The store class's ``from_url``, for a store built from URLs.
        unreachable_url: A URL of this store whose server is unreachable (a closed port).
        bad_urls: URLs ``from_url`` must refuse, each with a part of the message that says why.
        driver: The driver the store imports, when it has one to install.
    """

    name: str
    make_store: Callable[[], SessionStore]
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    age: "Callable[[SessionStore, str, float], Awaitable[None]] | None" = None
    dump: "Callable[[SessionStore], Awaitable[str]] | None" = None
    server_expires: bool = False
    from_url: Callable[[str], SessionStore] | None = None
    unreachable_url: str | None = None
    bad_urls: dict[str, str] = field(default_factory=dict)
    driver: Driver | None = None


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose server is missing; in CI (``CI`` set) fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI a skipped store test is a failure)", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeClock:
    """A clock tests move by hand instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settings(**overrides: Any) -> SessionSettings:
    return SessionSettings(secret_key=SECRET, **overrides)


def make_manager(
    model: type[ModelT],
    store: SessionStore,
    *,
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> SessionManager[ModelT]:
    if clock is None:
        return SessionManager(model, settings=settings(**overrides), store=store)
    return SessionManager(model, settings=settings(**overrides), store=store, clock=clock)


@contextmanager
def client(app: FastAPI, **kwargs: Any) -> Iterator[TestClient]:
    """A browser-like client: https, a cookie jar, the app's startup and shutdown run."""
    with TestClient(app, base_url=BASE_URL, **kwargs) as test_client:
        yield test_client


def set_cookies(response: Any) -> list[str]:
    return [value for name, value in response.headers.multi_items() if name.lower() == "set-cookie"]


async def assert_not_live(store: SessionStore, key: str, *, user_id: str, version: int) -> None:
    """Every method of ``store`` treats ``key`` as absent: a record past its expiry that the server still holds.

    Args:
        store: An opened store.
        key: The expired record's key.
        user_id: Its user, who then has no live session.
        version: Its version, which must not make an update land.
    """
    assert await store.load(key) is None
    assert await store.load_many([key]) == [None]
    assert await store.user_keys(user_id) == []
    assert await store.update(key, {"a": 2}, ttl=60.0) is UpdateResult.MISSING
    assert await store.update(key, {"a": 2}, ttl=60.0, expected_version=version) is UpdateResult.MISSING
    assert not await store.replace(key, "new", {"a": 1}, ttl=60.0, user_id=user_id, old_user_id=user_id)
    assert await store.load("new") is None


def login_app(sessions: SessionManager[AuthSession]) -> FastAPI:
    """The small app of the store tests: ``POST /login/{user_id}``, ``GET /me`` (logged in), ``GET /health``."""
    app = FastAPI()
    sessions.install(app)

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Annotated[AuthSession, Depends(sessions)]) -> dict[str, str]:
        session.login(user_id)
        return {"user": user_id}

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


class CountingStore(SessionStore):
    """Wraps a store and counts every call, to prove which requests do store I/O and which write.

    Args:
        inner: The store under test.
        lifecycle: Whether `open` and `close` reach the inner store. Off when several managers share
            one store and the test opens and closes it once.

    Attributes:
        calls: How many times each data method ran (``open`` and ``close`` are not counted).
        updates: The ``changes`` of every `update`, in order.
        keys: Every key the store was given.
    """

    WRITES = ("create", "update", "delete", "replace")

    def __init__(self, inner: SessionStore, *, lifecycle: bool = True) -> None:
        self.inner = inner
        self.lifecycle = lifecycle
        self.calls: Counter[str] = Counter()
        self.updates: list[dict[str, Any]] = []
        self.keys: set[str] = set()

    @property
    def in_process(self) -> bool:
        """As the inner store: the manager applies no timeout to an in-process store."""
        return bool(getattr(self.inner, "in_process", False))

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in self.WRITES)

    @property
    def io(self) -> int:
        """Every data call, reads and writes."""
        return sum(self.calls.values())

    def _called(self, name: str) -> None:
        """Counts a call; subclasses may also fail it, as a store that is down would."""
        self.calls[name] += 1

    def reset(self) -> None:
        self.calls.clear()
        self.updates.clear()
        self.keys.clear()

    async def open(self) -> None:
        if self.lifecycle:
            await self.inner.open()

    async def close(self) -> None:
        if self.lifecycle:
            await self.inner.close()

    async def load(self, key: str) -> StoredSession | None:
        self._called("load")
        self.keys.add(key)
        return await self.inner.load(key)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        self._called("load_many")
        self.keys.update(keys)
        return await self.inner.load_many(keys)

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        self._called("create")
        self.keys.add(key)
        await self.inner.create(key, data, ttl=ttl, user_id=user_id)

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        self._called("update")
        self.keys.add(key)
        self.updates.append(dict(changes))
        return await self.inner.update(key, changes, removed=removed, ttl=ttl, expected_version=expected_version)

    async def replace(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> bool:
        self._called("replace")
        self.keys.update((old_key, new_key))
        return await self.inner.replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        self._called("delete")
        self.keys.add(key)
        return await self.inner.delete(key, user_id=user_id)

    async def user_keys(self, user_id: str) -> list[str]:
        self._called("user_keys")
        return await self.inner.user_keys(user_id)

    async def cleanup(self) -> int:
        self._called("cleanup")
        return await self.inner.cleanup()
