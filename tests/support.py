"""Shared pieces of the fastapi_sessions test suite: backends, clocks, apps and clients."""

import os
import socket
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import SessionManager, SessionModel, SessionSettings, SessionStore, StoredSession, UpdateResult

SECRET = "test-secret-key-for-fastapi-sessions-0123456789"
OTHER_SECRET = "another-secret-key-for-fastapi-sessions-9876543210"
BASE_URL = "https://testserver"

ModelT = TypeVar("ModelT", bound=SessionModel)


@dataclass
class Backend:
    """A store under test.

    Attributes:
        name: The id the contract suite shows, e.g. ``redis`` or ``postgres``.
        make_store: Returns a new, unopened store in a namespace of its own (a fresh key prefix,
            table or collection). Called inside the test's event loop.
        url: A ``SESSION_STORE_URL`` reaching the same server, when the store has one.
    """

    name: str
    make_store: Callable[[], SessionStore]
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


class CountingStore(SessionStore):
    """Wraps a store and counts the calls of each method, to prove what a request did to the store."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}
        self.updates: list[dict[str, Any]] = []

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def writes(self) -> int:
        return sum(self.calls.get(name, 0) for name in ("create", "update", "delete", "replace"))

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.updates.clear()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def load(self, key: str) -> StoredSession | None:
        self._count("load")
        return await self.inner.load(key)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        self._count("load_many")
        return await self.inner.load_many(keys)

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        self._count("create")
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
        self._count("update")
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
        self._count("replace")
        return await self.inner.replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        self._count("delete")
        return await self.inner.delete(key, user_id=user_id)

    async def user_keys(self, user_id: str) -> list[str]:
        self._count("user_keys")
        return await self.inner.user_keys(user_id)

    async def cleanup(self) -> int:
        return await self.inner.cleanup()
