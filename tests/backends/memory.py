"""The memory store, for the contract and HTTP suites."""

import pytest

from fastapi_sessions import MemoryStore, SessionStore
from tests.support import Backend

BACKENDS = ["memory"]


async def age(store: SessionStore, key: str, seconds: float) -> None:
    assert isinstance(store, MemoryStore)
    entry = store._entries.get(key)
    if entry is not None:
        entry.expires_at -= seconds


async def dump(store: SessionStore) -> str:
    assert isinstance(store, MemoryStore)
    return repr([(key, entry.payload, entry.user_id) for key, entry in store._entries.items()])


@pytest.fixture
def backend_memory() -> Backend:
    return Backend(
        "memory",
        lambda: MemoryStore(),
        url="memory://",
        age=age,
        dump=dump,
        from_url=MemoryStore.from_url,
        bad_urls={
            "memory://?max_entries=lots": "max_entries must be an integer of at least 1, got 'lots'",
            "memory://?max_entries=0": "max_entries must be an integer of at least 1, got '0'",
            "memory://?size=5": "unknown option 'size'; the options are max_entries",
        },
    )
