"""The memory store, for the contract and HTTP suites."""

import pytest

from fastapi_sessions import MemoryStore
from tests.support import Backend

BACKENDS = ["memory"]


@pytest.fixture
def backend_memory() -> Backend:
    return Backend("memory", lambda: MemoryStore(), url="memory://")
