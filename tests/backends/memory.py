"""The memory store, for the contract and HTTP suites."""

import pytest

from fastapi_sessions import MemoryStore, SessionStore
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions, unknown
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


async def corrupt(store: SessionStore, key: str, how: str) -> None:
    assert isinstance(store, MemoryStore)
    entry = store._entries[key]
    if how == "not-json":
        entry.payload = b'{"secret": "s3cr3t", '
    elif how == "not-an-object":
        entry.payload = b'["s3cr3t"]'
    elif how == "version-not-integer":
        entry.version = "s3cr3t"  # type: ignore[assignment]
    elif how == FUTURE:
        entry.format = FUTURE_VERSION
    else:
        raise unknown(how)


async def strip_format(store: SessionStore, key: str) -> None:
    assert isinstance(store, MemoryStore)
    store._entries[key].format = None


@pytest.fixture
def backend_memory() -> Backend:
    return Backend(
        "memory",
        lambda: MemoryStore(),
        url="memory://",
        age=age,
        dump=dump,
        extra={"corruptions": Corruptions(corrupt, ("not-json", "not-an-object", "version-not-integer"), strip_format)},
        from_url=MemoryStore.from_url,
        bad_urls={
            "memory://?max_entries=lots": "max_entries must be an integer of at least 1, got 'lots'",
            "memory://?max_entries=0": "max_entries must be an integer of at least 1, got '0'",
            "memory://?size=5": "unknown option 'size'; the options are max_entries",
        },
    )
