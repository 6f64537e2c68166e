"""The store contract, expiry: records aged by the backend (their expiry moved into the past), never slept on."""

import pytest

from fastapi_sessions import SessionStore, UpdateResult
from tests.support import Backend, assert_not_live

pytestmark = pytest.mark.anyio

TTL = 60.0


async def test_expired_data_is_never_returned(store: SessionStore, aged: Backend) -> None:
    assert aged.age is not None
    await store.create("short", {"a": 1}, ttl=TTL, user_id=None)
    await store.create("long", {"a": 1}, ttl=TTL, user_id=None)
    await aged.age(store, "short", TTL + 1)
    assert await store.load("short") is None
    assert await store.update("short", {"a": 2}, ttl=TTL) is UpdateResult.MISSING
    assert await store.load("short") is None
    assert await store.load("long") is not None


async def test_an_expired_record_still_present_is_absent_to_every_method(store: SessionStore, aged: Backend) -> None:
    assert aged.age is not None and aged.dump is not None
    await store.create("old", {"a": 1}, ttl=TTL, user_id="u1")
    await aged.age(store, "old", TTL + 1)
    if not aged.server_expires:
        assert "old" in await aged.dump(store)  # past its expiry, not yet removed
        await assert_not_live(store, "old", user_id="u1", version=1)
    else:  # gone at once; its user's index may still name it until the index expires (see user_keys)
        assert await store.load("old") is None and await store.load_many(["old"]) == [None]
        assert await store.update("old", {"a": 2}, ttl=TTL, expected_version=1) is UpdateResult.MISSING
        assert not await store.replace("old", "new", {"a": 1}, ttl=TTL, user_id="u1", old_user_id="u1")
        assert await store.load("new") is None
    await store.create("old2", {"a": 1}, ttl=TTL, user_id=None)
    await aged.age(store, "old2", TTL + 1)
    assert await store.delete("old2") is False  # removed, though it did not count as live
    if not aged.server_expires:
        assert "old2" not in await aged.dump(store)


async def test_update_resets_expiry(store: SessionStore, aged: Backend) -> None:
    assert aged.age is not None
    await store.create("k1", {"a": 1}, ttl=10, user_id=None)
    assert await store.update("k1", {"a": 2}, ttl=TTL) is UpdateResult.UPDATED
    await aged.age(store, "k1", 30)  # past the first expiry, within the second
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"a": 2}


async def test_cleanup_returns_a_count(store: SessionStore, aged: Backend) -> None:
    assert aged.age is not None
    await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
    await aged.age(store, "k1", TTL + 1)
    assert await store.cleanup() >= 0
    assert await store.load("k1") is None


async def test_count_leaves_out_expired_sessions(store: SessionStore, aged: Backend) -> None:
    assert aged.age is not None
    await store.create("old", {"a": 1}, ttl=TTL, user_id="u1")
    await store.create("new", {"a": 1}, ttl=TTL, user_id="u1")
    await aged.age(store, "old", TTL + 1)
    assert await store.count() == 1
