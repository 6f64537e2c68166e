"""Shared pieces of the fastapi_sessions test suite: backends, clocks, apps and clients."""

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import SessionManager, SessionModel, SessionSettings, SessionStore

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
