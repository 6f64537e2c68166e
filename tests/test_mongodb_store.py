"""MongoStore beyond the contract: document shape, indexes, URLs, drivers, hostile input and faults.

The store-level tests run on mongomock-motor; no MongoDB server can be installed where CI runs. The
driver tests build real pymongo and Motor clients, which cannot connect here: they check what the
store does with them, and that an unreachable server is a `StoreUnavailableError` (HTTP 503).
"""

import asyncio
import gc
import re
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from mongomock_motor import AsyncMongoMockClient
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    WTimeoutError,
)

from fastapi_sessions import (
    SessionConfigError,
    StoreError,
    StoreUnavailableError,
    UpdateResult,
    store_from_url,
)
from fastapi_sessions.stores.mongodb import MongoStore
from tests.support import FakeClock, free_port

TTL = 60.0


def as_utc(value: datetime) -> datetime:
    """A BSON date as an aware datetime (clients return naive UTC unless tz_aware is set)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    # Far ahead of the real clock, by which mongomock applies TTL indexes when it reads: documents the
    # store's clock calls expired stay in the collection, as they do in MongoDB until its monitor runs.
    return FakeClock(4_000_000_000.0)


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[MongoStore]:
    async with MongoStore(AsyncMongoMockClient(), database="fs_test", clock=clock) as opened:
        yield opened


# The document and the indexes.


@pytest.mark.anyio
async def test_document_shape(store: MongoStore, clock: FakeClock) -> None:
    clock.now = 4_000_000_000.0004  # sub-millisecond: the expiry rounds up to the next millisecond
    await store.create("k1", {"theme": "dark", "_created": 1.0}, ttl=30, user_id="alice")
    document = await store.collection.find_one({"_id": "k1"})
    assert set(document) == {"_id", "d", "u", "v", "f", "exp", "g"}
    assert document["d"] == {"theme": "dark", "_created": 1.0}
    assert document["u"] == "alice"
    assert document["g"] == 0  # the user's revocation generation
    assert document["v"] == 1
    assert document["f"] == 1  # the format version
    assert as_utc(document["exp"]) == datetime.fromtimestamp(4_000_000_030.001, UTC)

    clock.advance(10)
    assert await store.update("k1", {"theme": "light", "lang": "fr"}, removed=["_created"], ttl=30) is (
        UpdateResult.UPDATED
    )
    document = await store.collection.find_one({"_id": "k1"})
    assert document["d"] == {"theme": "light", "lang": "fr"}
    assert document["v"] == 2
    assert as_utc(document["exp"]) == datetime.fromtimestamp(4_000_000_040.001, UTC)


@pytest.mark.anyio
async def test_anonymous_sessions_store_a_null_user(store: MongoStore) -> None:
    await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
    document = await store.collection.find_one({"_id": "k1"})
    assert document["u"] is None


@pytest.mark.anyio
async def test_open_creates_a_ttl_index_and_a_user_index(store: MongoStore) -> None:
    await store.open()  # again: creating the indexes is idempotent (several workers each do it)
    indexes = await store.collection.index_information()
    assert indexes["exp_1"]["key"] == [("exp", 1)]
    assert indexes["exp_1"]["expireAfterSeconds"] == 0
    assert indexes["u_1"]["key"] == [("u", 1)]


@pytest.mark.anyio
async def test_create_indexes_false_creates_none() -> None:
    async with MongoStore(AsyncMongoMockClient(), create_indexes=False) as store:
        await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
        assert set(await store.collection.index_information()) == {"_id_"}


@pytest.mark.anyio
async def test_a_conflicting_index_is_a_config_error() -> None:
    collection: Any = AsyncMongoMockClient()["fs_test"]["sessions"]
    await collection.create_index([("exp", 1)], expireAfterSeconds=3600)
    with pytest.raises(SessionConfigError, match="create_indexes"):
        await MongoStore(collection).open()


@pytest.mark.anyio
async def test_a_timeout_while_creating_indexes_is_retried_on_first_use(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = MongoStore(AsyncMongoMockClient(), database="fs_test")
    create_index = store.collection.create_index

    async def time_out(*args: Any, **kwargs: Any) -> None:
        raise ExecutionTimeout("operation exceeded time limit", 50)

    monkeypatch.setattr(store.collection, "create_index", time_out)
    await store.open()  # the app still starts
    assert "creating indexes at MongoDB (collection fs_test.sessions) failed: ExecutionTimeout" in caplog.text
    with pytest.raises(StoreUnavailableError, match="creating indexes before load"):
        await store.load("k1")

    monkeypatch.setattr(store.collection, "create_index", create_index)
    assert await store.load("k1") is None
    assert set(await store.collection.index_information()) == {"_id_", "exp_1", "u_1"}


# Expiry: the TTL monitor runs once a minute, so reads filter on exp themselves.


@pytest.mark.anyio
async def test_expiry_follows_the_store_clock(store: MongoStore, clock: FakeClock) -> None:
    await store.create("k1", {"n": 1}, ttl=10, user_id="alice")
    clock.advance(9.9)
    assert await store.load("k1") is not None
    clock.advance(0.2)
    assert await store.load("k1") is None
    assert await store.user_keys("alice") == []


@pytest.mark.anyio
async def test_delete_of_an_expired_document_removes_it_but_reports_false(store: MongoStore, clock: FakeClock) -> None:
    await store.create("k1", {"n": 1}, ttl=10, user_id=None)
    clock.advance(11)
    assert await store.delete("k1") is False
    assert await store.collection.find_one({"_id": "k1"}) is None


@pytest.mark.anyio
async def test_cleanup_deletes_expired_documents_and_counts_them(store: MongoStore, clock: FakeClock) -> None:
    await store.create("short1", {"n": 1}, ttl=10, user_id=None)
    await store.create("short2", {"n": 1}, ttl=10, user_id="alice")
    await store.create("long", {"n": 1}, ttl=100, user_id=None)
    clock.advance(11)
    assert await store.cleanup() == 2
    assert [document["_id"] async for document in store.collection.find({}, {"_id": 1})] == ["long"]
    assert await store.cleanup() == 0


# Updates.


@pytest.mark.anyio
async def test_version_mismatch_on_a_live_record_is_a_conflict_and_writes_nothing(store: MongoStore) -> None:
    await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
    assert await store.update("k1", {"n": 2}, ttl=TTL, expected_version=7) is UpdateResult.CONFLICT
    assert await store.update("ghost", {"n": 2}, ttl=TTL, expected_version=7) is UpdateResult.MISSING
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"n": 1} and loaded.version == 1


@pytest.mark.anyio
async def test_a_field_both_changed_and_removed_is_removed(store: MongoStore) -> None:
    await store.create("k1", {"a": 1, "b": 1}, ttl=TTL, user_id=None)
    assert await store.update("k1", {"a": 2, "b": 2}, removed=["a"], ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"b": 2}


@pytest.mark.anyio
async def test_an_update_touching_no_field_still_resets_expiry_and_bumps_version(
    store: MongoStore, clock: FakeClock
) -> None:
    await store.create("k1", {"a": 1}, ttl=10, user_id=None)
    clock.advance(9)
    assert await store.update("k1", {}, ttl=10) is UpdateResult.UPDATED
    clock.advance(9)
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"a": 1} and loaded.version == 2


@pytest.mark.anyio
async def test_load_many_with_no_keys_and_repeated_keys(store: MongoStore) -> None:
    await store.create("k1", {"n": 1}, ttl=TTL, user_id=None)
    assert await store.load_many([]) == []
    assert [item.data if item else None for item in await store.load_many(["k1", "k2", "k1"])] == [
        {"n": 1},
        None,
        {"n": 1},
    ]


# The driver's errors.


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection closed"),
        NotPrimaryError("not primary"),
        NetworkTimeout("timed out"),
        ExecutionTimeout("operation exceeded time limit", 50),
        OperationFailure("operation exceeded time limit", 50),  # a timeout by its code
        WTimeoutError("waiting for replication timed out", 64),
        ConfigurationError("The DNS query name does not exist: _mongodb._tcp.cluster0.example.net."),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_unavailability_errors_become_store_unavailable(
    store: MongoStore, error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(store.collection, "find_one", fail)
    with pytest.raises(StoreUnavailableError) as raised:
        await store.load("k1")
    assert str(raised.value).startswith(
        f"MongoStore: load at MongoDB (collection fs_test.sessions) failed: {type(error).__name__}"
    )
    assert raised.value.__cause__ is error


@pytest.mark.anyio
async def test_other_driver_errors_are_not_unavailability(store: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*args: Any, **kwargs: Any) -> None:
        raise OperationFailure("command find requires authentication", 13)

    monkeypatch.setattr(store.collection, "find_one", fail)
    with pytest.raises(OperationFailure, match="requires authentication"):
        await store.load("k1")


# Hostile input: user IDs are values, field names never become paths of their own choosing.


@pytest.mark.anyio
@pytest.mark.parametrize(
    "hostile", ['{"$ne": null}', '{"$gt": ""}', "$ne", "$where", ".*", "^a", "a.b", "u", "null", "\x00"]
)
async def test_hostile_user_ids_match_only_themselves(store: MongoStore, hostile: str) -> None:
    await store.create("alice", {"n": 1}, ttl=TTL, user_id="alice")
    await store.create("anonymous", {"n": 1}, ttl=TTL, user_id=None)
    await store.create("hostile", {"n": 1}, ttl=TTL, user_id=hostile)
    assert await store.user_keys(hostile) == ["hostile"]
    assert (await store.collection.find_one({"_id": "hostile"}))["u"] == hostile


@pytest.mark.anyio
async def test_a_user_id_that_is_not_a_string_is_refused(store: MongoStore) -> None:
    await store.create("alice", {"n": 1}, ttl=TTL, user_id="alice")
    with pytest.raises(TypeError, match="user_id must be a string"):
        await store.user_keys(cast(Any, {"$ne": None}))


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["a.b", "$set", "a$b", "", "a\x00b", "exp", "d"])
async def test_field_names_that_would_change_an_update_path_are_refused(store: MongoStore, name: str) -> None:
    if name in ("exp", "d"):
        # Plain names are fine: they live under "d.", away from the document's own fields.
        await store.create("k1", {name: 1}, ttl=TTL, user_id=None)
        assert await store.update("k1", {name: 2}, ttl=TTL) is UpdateResult.UPDATED
        loaded = await store.load("k1")
        assert loaded is not None and loaded.data == {name: 2}
        return
    await store.create("k1", {"a": 1}, ttl=TTL, user_id=None)
    with pytest.raises(StoreError, match="field named"):
        await store.create("k2", {name: 1}, ttl=TTL, user_id=None)
    with pytest.raises(StoreError, match="field named"):
        await store.update("k1", {name: 1}, ttl=TTL)
    with pytest.raises(StoreError, match="field named"):
        await store.update("k1", {"a": 2}, removed=[name], ttl=TTL)
    assert await store.load("k2") is None
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"a": 1} and loaded.version == 1


@pytest.mark.anyio
async def test_nested_keys_are_stored_as_data(store: MongoStore) -> None:
    data = {"prefs": {"$set": {"v": 1}, "a.b": "c"}}
    await store.create("k1", data, ttl=TTL, user_id=None)
    assert await store.update("k1", {"more": {"$inc": {"v": 1}}}, ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {**data, "more": {"$inc": {"v": 1}}} and loaded.version == 2


# URLs.


def client_of(store: MongoStore) -> Any:
    return store.collection.database.client


def test_from_url_defaults() -> None:
    store = MongoStore.from_url("mongodb://127.0.0.1:27017")
    assert store.collection.full_name == "fastapi_sessions.sessions"
    mongo = client_of(store)
    assert isinstance(mongo, AsyncMongoClient)
    assert mongo.options.server_selection_timeout == 1.5
    assert mongo.options.pool_options.connect_timeout == 2.0
    assert mongo.options.pool_options.socket_timeout == 2.0


def test_from_url_database_collection_and_options() -> None:
    store = MongoStore.from_url(
        "mongodb://app:s%40cret@db1.example:27017,db2.example:27018/app_db"
        "?replicaSet=rs0&Collection=web_sessions&w=majority&serverselectiontimeoutms=700&socketTimeoutMS=5000"
    )
    assert store.collection.full_name == "app_db.web_sessions"
    mongo = client_of(store)
    assert mongo.options.replica_set_name == "rs0"
    assert mongo.options.write_concern.document == {"w": "majority"}
    assert mongo.options.server_selection_timeout == 0.7  # given in any case: kept
    assert mongo.options.pool_options.socket_timeout == 5.0
    assert mongo.options.pool_options.connect_timeout == 2.0


def test_from_url_with_timeout_ms_sets_no_reply_timeout_of_its_own() -> None:
    mongo = client_of(MongoStore.from_url("mongodb://127.0.0.1:27017/app?timeoutMS=5000"))
    assert mongo.options.timeout == 5.0
    assert mongo.options.pool_options.socket_timeout is None
    assert mongo.options.server_selection_timeout == 1.5


def test_from_url_srv_does_not_resolve_until_used() -> None:
    store = MongoStore.from_url("mongodb+srv://app:pw@cluster0.example.invalid/app_db?collection=s")
    assert store.collection.full_name == "app_db.s"


def test_store_from_url_picks_mongo_store() -> None:
    store = store_from_url("mongodb://localhost/app?collection=s&create_indexes=false")
    assert isinstance(store, MongoStore)
    assert store.collection.full_name == "app.s"


# Drivers: pymongo's AsyncMongoClient, Motor, and misuse.


@pytest.fixture
def closed_port() -> int:
    return free_port()


def run_in_own_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` in an event loop of its own, then finalize, quietly, what closed clients left behind.

    Closing an ``AsyncMongoClient`` cancels its server monitors, and a monitor cancelled while it
    connects keeps its socket, unclosed, for as long as its event loop lives (pymongo 4.20). In the
    test runner's shared loop that socket's ResourceWarning would surface, as an error, at some later
    test or at the end of the run; in a loop of the test's own it is released here.
    """
    asyncio.run(main())
    release_leftover_sockets()


def release_leftover_sockets() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.mark.parametrize("driver", ["pymongo", "motor"])
def test_a_client_database_or_collection_is_accepted(driver: str, closed_port: int) -> None:
    async def main() -> None:
        url = f"mongodb://127.0.0.1:{closed_port}"
        mongo: Any = AsyncMongoClient(url, serverSelectionTimeoutMS=100) if driver == "pymongo" else None
        if mongo is None:
            mongo = AsyncIOMotorClient(url, serverSelectionTimeoutMS=100)
        try:
            assert MongoStore(mongo).collection.full_name == "fastapi_sessions.sessions"
            assert MongoStore(mongo, database="app", collection="s").collection.full_name == "app.s"
            assert MongoStore(mongo["app"]).collection.full_name == "app.sessions"
            assert MongoStore(mongo["app"], collection="s").collection.full_name == "app.s"
            store = MongoStore(mongo["app"]["s"])
            assert store.collection.full_name == "app.s"

            await store.open()  # an unreachable server does not stop the app from starting
            for operation in (
                store.load("k1"),
                store.create("k1", {"n": 1}, ttl=TTL, user_id=None),
                store.user_keys("alice"),
            ):
                with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{closed_port}") as raised:
                    await operation
                assert "ServerSelectionTimeoutError" in str(raised.value)
                assert "app.s" in str(raised.value)
        finally:
            if driver == "pymongo":
                await mongo.close()
            else:
                mongo.close()

    run_in_own_loop(main)


def test_closing_the_store_leaves_a_client_it_was_given_open(closed_port: int) -> None:
    async def main() -> None:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{closed_port}", serverSelectionTimeoutMS=100
        )
        async with MongoStore(mongo, create_indexes=False) as store:
            with pytest.raises(StoreUnavailableError):
                await store.load("k1")
        # Still the server that is missing, not "cannot use MongoClient after close".
        with pytest.raises(StoreUnavailableError, match="ServerSelectionTimeoutError"):
            await store.load("k1")
        await mongo.close()

    run_in_own_loop(main)


def test_a_store_from_url_closes_its_client_and_reopens_with_a_new_one(closed_port: int) -> None:
    async def main() -> None:
        store = MongoStore.from_url(f"mongodb://127.0.0.1:{closed_port}/app?serverSelectionTimeoutMS=100")
        first = client_of(store)
        await store.open()
        with pytest.raises(StoreUnavailableError, match="creating indexes before load"):
            await store.load("k1")
        await store.close()
        where = re.escape(f"MongoDB 127.0.0.1:{closed_port} (collection app.sessions)")
        with pytest.raises(StoreUnavailableError, match=where):
            await store.load("k1")
        assert client_of(store) is not first
        await store.close()

    run_in_own_loop(main)


@pytest.mark.parametrize("mistake", ["sync client", "not a client", "names with a collection", "database twice"])
def test_misuse_is_a_type_error(mistake: str) -> None:
    sync: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:1", connect=False)
    fake: Any = AsyncMongoMockClient()
    try:
        with pytest.raises(TypeError, match="MongoStore"):
            if mistake == "sync client":
                MongoStore(sync["app"]["s"])
            elif mistake == "not a client":
                MongoStore("mongodb://localhost")
            elif mistake == "names with a collection":
                MongoStore(fake["app"]["s"], collection="other")
            else:
                MongoStore(fake["app"], database="other")
    finally:
        sync.close()


class InterleavingCollection:
    """A mongomock collection whose every operation lets other tasks run first, as a server's round trip does.

    Each operation stays atomic (mongomock's are), as MongoDB makes each document's write: only
    what happens between two operations interleaves.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        async def operation(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await attribute(*args, **kwargs)

        return operation

    async def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await self._inner.find_one_and_update(*args, **kwargs)


@pytest.mark.anyio
async def test_revocation_is_atomic_with_regeneration_when_operations_interleave() -> None:
    from tests import test_store_contract as contract

    collection = InterleavingCollection(AsyncMongoMockClient()["fs_test"]["sessions"])
    async with MongoStore(collection) as store:
        await contract.test_revoking_all_sessions_catches_those_regenerating_meanwhile(store)
        await contract.test_revoking_one_session_while_it_regenerates(store)


@pytest.mark.anyio
async def test_the_revocation_generation_document(store: MongoStore) -> None:
    await store.create("a1", {"n": 1}, ttl=60, user_id="alice")
    assert (await store.collection.find_one({"_id": "a1"}))["g"] == 0
    assert await store.delete_user_sessions("alice") == 1
    assert await store.collection.find_one({"_id": {"revoked": "alice"}}) == {"_id": {"revoked": "alice"}, "g": 1}
    # A session written before generations counts as generation 0.
    await store.collection.insert_one({"_id": "old", "d": {}, "u": "bob", "v": 1, "f": 1, "exp": datetime.max})
    assert await store.replace("old", "new", {"n": 2}, ttl=60, user_id="bob", old_user_id="bob")
    assert (await store.collection.find_one({"_id": "new"}))["g"] == 0
