"""pytest fixtures for testing apps that use fastapi_sessions, loaded as the ``pytest11`` entry point.

Installing the package makes these fixtures available to every test; a test that names none of
them gets nothing from this module, which defines fixtures only, no hooks. Disable it with
``-p no:fastapi_sessions.pytest_plugin``.

- ``sessions_clock``: a `fastapi_sessions.testing.FakeClock` for the test.
- ``sessions_store``: a new, empty `MemoryStore` for the test.
- ``sessions_settings``: a factory, ``sessions_settings(**overrides)``, of `SessionSettings` with a
  test secret; ``SESSION_*`` variables and ``.env`` are not read, so every machine gets the same.
- ``sessions_manager``: a factory, ``sessions_manager(Model, **overrides)``, of a `SessionManager`
  over ``sessions_store``, ``sessions_clock`` and ``sessions_settings(**overrides)``.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from fastapi_sessions.manager import SessionManager
from fastapi_sessions.model import SessionModel
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.stores.memory import MemoryStore

if TYPE_CHECKING:  # the testing module needs an HTTP client installed: imported only when its fixture is used
    from fastapi_sessions.testing import FakeClock

__all__ = ["TEST_SECRET_KEY", "sessions_clock", "sessions_manager", "sessions_settings", "sessions_store"]

TEST_SECRET_KEY = "fastapi-sessions-test-secret-key-0123456789-abcdefghij"
"""The secret ``sessions_settings`` signs with: fine for tests, never for an app that serves anyone."""

ModelT = TypeVar("ModelT", bound=SessionModel)


class _ArgumentSettings(SessionSettings):
    """`SessionSettings` from the arguments alone."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@pytest.fixture
def sessions_clock() -> "FakeClock":
    """A clock the test moves by hand (``sessions_clock.advance(3600)``), at the current time to begin with."""
    from fastapi_sessions.testing import FakeClock

    return FakeClock()


@pytest.fixture
def sessions_store() -> MemoryStore:
    """A new, empty memory store for this test."""
    return MemoryStore()


@pytest.fixture
def sessions_settings() -> Callable[..., SessionSettings]:
    """Builds `SessionSettings` from a test secret and the keyword arguments given, and nothing else."""

    def build(**overrides: Any) -> SessionSettings:
        return _ArgumentSettings.load(**{"secret_key": TEST_SECRET_KEY, **overrides})

    return build


@pytest.fixture
def sessions_manager(
    sessions_store: MemoryStore,
    sessions_clock: "FakeClock",
    sessions_settings: Callable[..., SessionSettings],
) -> Callable[..., SessionManager[Any]]:
    """Builds a `SessionManager` for a model, over this test's store and clock, with settings overrides."""

    def build(model: type[ModelT], **overrides: Any) -> SessionManager[ModelT]:
        settings = sessions_settings(**overrides)
        return SessionManager(model, settings=settings, store=sessions_store, clock=sessions_clock)

    return build
