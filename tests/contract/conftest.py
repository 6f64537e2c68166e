"""The store contract: written once, run against every store in ``tests/backends/`` through ``backend``."""

from collections.abc import AsyncIterator

import pytest

from fastapi_sessions import SessionStore
from tests.support import Backend


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SessionStore]:
    """The backend's store, opened, in a namespace of the test's own."""
    async with backend.make_store() as opened:
        yield opened


@pytest.fixture
def aged(backend: Backend) -> Backend:
    """The backend, which can age records instead of the test sleeping."""
    if backend.age is None:
        pytest.skip(f"{backend.name} cannot age its records")
    return backend
