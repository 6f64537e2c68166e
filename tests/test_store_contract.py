"""The store contract, its operations: written once, run against every store in ``tests/backends/``.

Each test takes only an opened ``store``, so any store can run them. What needs more of the backend
(ageing records, its URLs, its driver, HTTP) is in ``tests/contract/``.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from fastapi_sessions import SessionStore, StoredSession, UpdateResult
from tests.support import Backend

pytestmark = pytest.mark.anyio

TTL = 60.0


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SessionStore]:
    async with backend.make_store() as opened:
        yield opened


async def test_round_trip(store: SessionStore) -> None:
    data = {"theme": "dark", "items": [1, 2, 3], "prefs": {"a": None, "b": 1.5}, "_created": 1.0}
    await store.create("k1", data, ttl=TTL, user_id=None)
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.data == data
    assert loaded.version == 1
    assert loaded.user_id is None


async def test_missing_key_loads_none(store: SessionStore) -> None:
    assert await store.load("does-not-exist") is None


async def test_create_overwrites(store: SessionStore) -> None:
    await store.create("k1", {"a": 1, "b": 2}, ttl=TTL, user_id=None)
    await store.create("k1", {"a": 3}, ttl=TTL, user_id=None)
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"a": 3}


async def test_update_writes_only_named_fields(store: SessionStore) -> None:
    await store.create("k1", {"a": 1, "b": [1], "c": "x"}, ttl=TTL, user_id=None)
    result = await store.update("k1", {"b": [1, 2], "d": {"n": None}}, removed=["c"], ttl=TTL)
    assert result is UpdateResult.UPDATED
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.data == {"a": 1, "b": [1, 2], "d": {"n": None}}
    assert loaded.version == 2


async def test_update_of_missing_key_creates_nothing(store: SessionStore) -> None:
    assert await store.update("ghost", {"a": 1}, ttl=TTL) is UpdateResult.MISSING
    assert await store.load("ghost") is None


async def test_update_after_delete_does_not_resurrect(store: SessionStore) -> None:
    await store.create("k1", {"a": 1}, ttl=TTL, user_id="u1")
    assert await store.delete("k1", user_id="u1") is True
    assert await store.update("k1", {"a": 2}, ttl=TTL) is UpdateResult.MISSING
    assert await store.load("k1") is None


async def test_delete(store: SessionStore) -> None:
    await store.create("k1", {"a": 1}, ttl=TTL, user_id=None)
    assert await store.delete("k1") is True
    assert await store.load("k1") is None
    assert await store.delete("k1") is False


async def test_delete_of_missing_key(store: SessionStore) -> None:
    assert await store.delete("never-there") is False


async def test_version_check(store: SessionStore) -> None:
    await store.create("k1", {"a": 1}, ttl=TTL, user_id=None)
    assert await store.update("k1", {"a": 2}, ttl=TTL, expected_version=1) is UpdateResult.UPDATED
    assert await store.update("k1", {"a": 3}, ttl=TTL, expected_version=1) is UpdateResult.CONFLICT
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"a": 2} and loaded.version == 2


async def test_replace_moves_the_session(store: SessionStore) -> None:
    await store.create("old", {"a": 1, "_created": 5.0}, ttl=TTL, user_id=None)
    assert await store.replace(
        "old", "new", {"a": 1, "user_id": "u1", "_created": 5.0}, ttl=TTL, user_id="u1", old_user_id=None
    )
    assert await store.load("old") is None
    loaded = await store.load("new")
    assert loaded is not None
    assert loaded.data == {"a": 1, "user_id": "u1", "_created": 5.0}
    assert loaded.user_id == "u1"
    assert await store.user_keys("u1") == ["new"]


async def test_replace_never_resurrects_a_deleted_session(store: SessionStore) -> None:
    await store.create("old", {"a": 1}, ttl=TTL, user_id=None)
    await store.delete("old")
    assert not await store.replace("old", "new", {"a": 1}, ttl=TTL, user_id="u1", old_user_id=None)
    assert await store.load("new") is None
    assert await store.user_keys("u1") == []


async def test_user_index(store: SessionStore) -> None:
    await store.create("a1", {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("a2", {"n": 2}, ttl=TTL, user_id="alice")
    await store.create("b1", {"n": 3}, ttl=TTL, user_id="bob")
    assert sorted(await store.user_keys("alice")) == ["a1", "a2"]
    assert await store.user_keys("bob") == ["b1"]
    await store.delete("a1", user_id="alice")
    assert await store.user_keys("alice") == ["a2"]
    assert await store.user_keys("nobody") == []


@pytest.mark.parametrize("hostile", ["*", "?", "a*", "[ab]", "%", "_", "' OR '1'='1", '{"$ne": null}', "a.b", "$where"])
async def test_user_index_is_an_exact_lookup(store: SessionStore, hostile: str) -> None:
    await store.create("ab", {"n": 1}, ttl=TTL, user_id="ab")
    await store.create("a", {"n": 1}, ttl=TTL, user_id="a")
    await store.create("h", {"n": 1}, ttl=TTL, user_id=hostile)
    assert await store.user_keys(hostile) == ["h"]
    assert await store.user_keys("ab") == ["ab"]


async def test_concurrent_updates_of_different_fields_all_persist(store: SessionStore) -> None:
    await store.create("k1", {"base": 0}, ttl=TTL, user_id=None)
    results = await asyncio.gather(*(store.update("k1", {f"f{i}": i}, ttl=TTL) for i in range(50)))
    assert all(result is UpdateResult.UPDATED for result in results)
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.data == {"base": 0, **{f"f{i}": i for i in range(50)}}
    assert loaded.version == 51


async def test_concurrent_strict_updates_let_exactly_one_win(store: SessionStore) -> None:
    await store.create("k1", {"n": 0}, ttl=TTL, user_id=None)
    results = await asyncio.gather(*(store.update("k1", {"n": i}, ttl=TTL, expected_version=1) for i in range(20)))
    assert results.count(UpdateResult.UPDATED) == 1
    assert results.count(UpdateResult.CONFLICT) == 19


async def test_large_values(store: SessionStore) -> None:
    big = "x" * 500_000
    await store.create("k1", {"big": big, "list": list(range(10_000))}, ttl=TTL, user_id=None)
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.data["big"] == big and loaded.data["list"] == list(range(10_000))


async def test_unicode(store: SessionStore) -> None:
    data = {"name": "Zoë 🦄 名前", "emoji": ["☃", "\u2028", "\\", '"'], "ключ": "значение"}
    await store.create("k1", data, ttl=TTL, user_id="ユーザー")
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == data
    assert await store.user_keys("ユーザー") == ["k1"]


async def test_load_many_keeps_order(store: SessionStore) -> None:
    await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
    await store.create("k3", {"n": 3}, ttl=TTL, user_id=None)
    loaded = await store.load_many(["k3", "k2", "k1"])
    assert [item.data["n"] if isinstance(item, StoredSession) else None for item in loaded] == [3, None, 1]


async def test_count_counts_live_sessions_with_a_user_or_without(store: SessionStore) -> None:
    assert await store.count() == 0
    for key in ("a1", "a2"):
        await store.create(key, {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("anon", {"n": 2}, ttl=TTL, user_id=None)
    assert await store.count() == 3
    assert await store.update("anon", {"n": 3}, ttl=TTL) is UpdateResult.UPDATED
    assert await store.replace("a1", "a1-new", {"n": 1}, ttl=TTL, user_id="alice", old_user_id="alice")
    assert await store.count() == 3
    assert await store.delete("anon")
    assert await store.count() == 2
    # What a store keeps besides sessions (a user's index, a revocation counter) is not counted.
    assert await store.delete_user_sessions("alice") == 2
    assert await store.count() == 0


async def test_nul_characters_round_trip(store: SessionStore) -> None:
    data = {"text": "x\x00y", "esc": "\ue000 \ue0000 \ue0001", "nested": {"k": ["\x00", "\ue000"]}, "n": 1}
    await store.create("k", data, ttl=TTL, user_id="user\x00one")
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == data and loaded.user_id == "user\x00one"
    assert await store.user_keys("user\x00one") == ["k"]
    assert await store.user_keys("user") == []
    assert await store.update("k", {"more": "\x00", "n": 2}, removed=["text"], ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k")
    assert loaded is not None
    assert loaded.data == {"esc": data["esc"], "nested": data["nested"], "n": 2, "more": "\x00"}


async def test_delete_user_sessions_deletes_every_session_of_the_user_but_keep(store: SessionStore) -> None:
    for key in ("a1", "a2", "a3"):
        await store.create(key, {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("b1", {"n": 2}, ttl=TTL, user_id="bob")
    await store.create("anon", {"n": 3}, ttl=TTL, user_id=None)
    assert await store.delete_user_sessions("alice", keep="a2") == 2
    assert await store.user_keys("alice") == ["a2"]
    loaded = [await store.load(key) is not None for key in ("a1", "a2", "a3", "b1", "anon")]
    assert loaded == [False, True, False, True, True]
    assert await store.delete_user_sessions("alice") == 1
    assert await store.user_keys("alice") == []
    assert await store.load("a2") is None
    assert await store.delete_user_sessions("alice") == 0
    assert await store.user_keys("bob") == ["b1"]


async def test_delete_user_session_deletes_only_a_session_of_that_user(store: SessionStore) -> None:
    await store.create("a1", {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("b1", {"n": 2}, ttl=TTL, user_id="bob")
    await store.create("anon", {"n": 3}, ttl=TTL, user_id=None)
    assert await store.delete_user_session("alice", "b1") is False
    assert await store.delete_user_session("alice", "anon") is False
    assert await store.delete_user_session("alice", "missing") is False
    assert await store.load("b1") is not None and await store.load("anon") is not None
    assert await store.delete_user_session("alice", "a1") is True
    assert await store.load("a1") is None
    assert await store.user_keys("alice") == []
    assert await store.delete_user_session("alice", "a1") is False


async def test_a_revoked_session_is_not_regenerated_later(store: SessionStore) -> None:
    await store.create("a1", {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("a2", {"n": 1}, ttl=TTL, user_id="alice")
    assert await store.replace("a1", "a1b", {"n": 2}, ttl=TTL, user_id="alice", old_user_id="alice")
    assert await store.delete_user_sessions("alice", keep="a1b") == 1
    # The kept session regenerates as before; the others are gone for good.
    assert await store.replace("a1b", "a1c", {"n": 3}, ttl=TTL, user_id="alice", old_user_id="alice")
    assert not await store.replace("a2", "a2b", {"n": 2}, ttl=TTL, user_id="alice", old_user_id="alice")
    assert await store.user_keys("alice") == ["a1c"]
    # A new login after the revocation is a session like any other.
    await store.create("a3", {"n": 1}, ttl=TTL, user_id="alice")
    assert await store.replace("a3", "a3b", {"n": 2}, ttl=TTL, user_id="alice", old_user_id="alice")
    assert sorted(await store.user_keys("alice")) == ["a1c", "a3b"]


# The races below are free-running, not staged: a store that revokes in one operation passes every
# interleaving, so the test runs many and checks the outcome. Each chain regenerates at most ROUNDS
# times, and the revocation starts once every chain has regenerated twice.
CHAINS = 6
ROUNDS = 40
TRIALS = 4


async def regenerate_until_revoked(
    store: SessionStore, user: str, keys: list[str], started: asyncio.Event, revoked: asyncio.Event
) -> None:
    """Regenerate the session ``keys[-1]`` of ``user`` until a regeneration fails, appending each new key."""
    try:
        for round_ in range(ROUNDS):
            late = revoked.is_set()
            new = f"{keys[0]}.{round_}"
            if not await store.replace(keys[-1], new, {"n": round_}, ttl=TTL, user_id=user, old_user_id=user):
                return
            assert not late, f"{keys[-1]} was regenerated after its revocation returned"
            keys.append(new)
            if round_ == 1:
                started.set()
            await asyncio.sleep(0)  # let the other chains and the revocation run between two regenerations
    finally:
        started.set()  # however the chain ended, the revocation never waits for it forever


async def revoke_all_once_started(
    store: SessionStore, user: str, started: list[asyncio.Event], revoked: asyncio.Event
) -> None:
    for event in started:
        await event.wait()
    await store.delete_user_sessions(user)
    revoked.set()


async def revoke_one_once_started(
    store: SessionStore, user: str, keys: list[str], started: asyncio.Event, revoked: asyncio.Event
) -> tuple[str, bool]:
    await started.wait()
    handle = keys[-1]  # as a listing just showed it
    deleted = await store.delete_user_session(user, handle)
    if deleted:
        revoked.set()
    return handle, deleted


async def test_revoking_all_sessions_catches_those_regenerating_meanwhile(store: SessionStore) -> None:
    for trial in range(TRIALS):
        user = f"user{trial}"
        await store.create(f"other{trial}", {"n": 0}, ttl=TTL, user_id=f"bystander{trial}")
        chains = [[f"t{trial}c{chain}"] for chain in range(CHAINS)]
        for keys in chains:
            await store.create(keys[0], {"n": 0}, ttl=TTL, user_id=user)
        started = [asyncio.Event() for _ in chains]
        revoked = asyncio.Event()

        await asyncio.gather(
            revoke_all_once_started(store, user, started, revoked),
            *(
                regenerate_until_revoked(store, user, keys, event, revoked)
                for keys, event in zip(chains, started, strict=True)
            ),
        )
        every_key = [key for keys in chains for key in keys]
        survivors = [key for key, loaded in zip(every_key, await store.load_many(every_key), strict=True) if loaded]
        assert survivors == [], f"trial {trial}: sessions that existed before the revocation survived it"
        assert await store.user_keys(user) == []
        assert await store.load(f"other{trial}") is not None


async def test_revoking_one_session_while_it_regenerates(store: SessionStore) -> None:
    for trial in range(TRIALS * CHAINS):
        user = f"user{trial}"
        keys = [f"t{trial}"]
        await store.create(keys[0], {"n": 0}, ttl=TTL, user_id=user)
        started, revoked = asyncio.Event(), asyncio.Event()
        (handle, deleted), _ = await asyncio.gather(
            revoke_one_once_started(store, user, keys, started, revoked),
            regenerate_until_revoked(store, user, keys, started, revoked),
        )
        assert await store.load(handle) is None
        if deleted:  # the revocation came first: its regeneration failed, and none followed
            assert keys[-1] == handle
            assert await store.user_keys(user) == []
        else:  # the regeneration came first: the handle was stale, and the session lives on under its new key
            assert keys[-1] != handle
            assert await store.user_keys(user) == [keys[-1]]
