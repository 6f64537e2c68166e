"""Managers for tests: the test secrets, a clock moved by hand, and `make_manager`."""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi_sessions import SessionManager, SessionModel, SessionSettings, SessionStore

SECRET = "test-secret-key-for-fastapi-sessions-0123456789"
OTHER_SECRET = "another-secret-key-for-fastapi-sessions-9876543210"

ModelT = TypeVar("ModelT", bound=SessionModel)


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
