"""What only the Redis store does: its key layout, expiry, scripts, rights, and behaviour when Redis goes away.

The contract suite (tests/test_store_contract.py, tests/contract/) runs against Redis through
tests/backends/redis.py; tests/test_redis_clients.py covers clients and URLs; this module the rest.
"""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from redis.asyncio import Redis

from fastapi_sessions import (
    AuthSession,
    StoreUnavailableError,
    UpdateResult,
)
from fastapi_sessions.stores.redis import RedisStore
from tests.backends.redis import FAST, SHARED_PORT
from tests.redis_servers import HOST, SENTINEL_SERVICE, RedisServer, redis_cluster, redis_sentinel
from tests.support import Backend, client, free_port, login_app, make_manager, set_cookies

TTL = 60.0


@pytest.fixture
def shared(backend_redis: Backend) -> Iterator[redis.Redis]:
    """A synchronous client of the shared server, to look at what the store wrote."""
    with redis.Redis(host=HOST, port=SHARED_PORT, decode_responses=True) as sync_client:
        yield sync_client


@pytest.fixture
async def store(backend_redis: Backend) -> AsyncIterator[RedisStore]:
    made = backend_redis.make_store()
    assert isinstance(made, RedisStore)
    async with made as opened:
        yield opened


def keys_of(sync_client: redis.Redis, prefix: str) -> list[str]:
    return sorted(sync_client.scan_iter(match=f"{prefix}*", count=1000))


# Layout and expiry.


def test_http_login_stores_one_hash_and_one_index(backend_redis: Backend, shared: redis.Redis) -> None:
    prefix = backend_redis.extra["prefix"]
    sessions = make_manager(AuthSession, backend_redis.make_store())
    with client(login_app(sessions)) as test_client:
        assert test_client.post("/login/alice*").status_code == 200
        cookie = test_client.cookies.get(sessions.cookie_name)
        assert cookie is not None
        unsigned = sessions.signer.unsign(cookie)
        assert unsigned is not None
        session_id = unsigned.session_id

        session_key = f"{prefix}{{{sessions.signer.store_key(session_id)}}}"
        index_key = RedisStore(Redis(), prefix=prefix).user_index_key("alice*")
        assert keys_of(shared, prefix) == sorted([session_key, index_key])
        assert re.fullmatch(re.escape(prefix) + r"user:[0-9a-f]{40}", index_key)
        assert shared.type(session_key) == "hash"
        assert shared.type(index_key) == "set"

        fields = shared.hgetall(session_key)
        assert fields[":v"] == "1" and fields[":u"] == "alice*"
        assert fields["user_id"] == '"alice*"'
        assert shared.smembers(index_key) == {sessions.signer.store_key(session_id)}

        assert test_client.get("/me").json() == {"user": "alice*"}


@pytest.mark.anyio
async def test_every_write_sets_the_expiry(store: RedisStore, shared: redis.Redis) -> None:
    await store.create("k1", {"a": 1}, ttl=TTL, user_id="u1")
    session, index = store.session_key("k1"), store.user_index_key("u1")
    assert 55_000 < shared.pttl(session) <= 60_000
    assert 115_000 < shared.pttl(index) <= 120_000  # twice the session's ttl

    await store.update("k1", {"a": 2}, ttl=300, expected_version=1)
    assert 295_000 < shared.pttl(session) <= 300_000

    assert await store.replace("k1", "k2", {"a": 3}, ttl=120, user_id="u1", old_user_id="u1")
    assert shared.exists(session) == 0
    assert 115_000 < shared.pttl(store.session_key("k2")) <= 120_000
    assert shared.smembers(index) == {"k2"}


@pytest.mark.anyio
async def test_user_index_outlives_the_longest_session(store: RedisStore, shared: redis.Redis) -> None:
    index = store.user_index_key("u1")
    await store.create("long", {}, ttl=600, user_id="u1")
    await store.create("short", {}, ttl=10, user_id="u1")
    assert shared.pttl(index) > 1_190_000
    await store.create("longer", {}, ttl=900, user_id="u1")
    assert shared.pttl(index) > 1_790_000


@pytest.fixture(params=["redis", "redis-cluster"])
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStore]:
    made = request.getfixturevalue(f"backend_{request.param.replace('-', '_')}").make_store()
    async with made as opened:
        yield opened


async def pttl(store: RedisStore, key: str) -> int:
    return int(await store.client.execute_command("PTTL", key))


@pytest.mark.anyio
async def test_user_index_outlives_sessions_that_activity_extends(any_store: RedisStore) -> None:
    store, index = any_store, any_store.user_index_key("u1")
    await store.create("k1", {"n": 0}, ttl=10, user_id="u1")
    assert 19_000 < await pttl(store, index) <= 20_000
    # Updates within the index's margin leave it alone; one that would outlive it extends it.
    assert await store.update("k1", {"n": 1}, ttl=15) is UpdateResult.UPDATED
    assert await pttl(store, index) <= 20_000
    assert await store.update("k1", {"n": 2}, ttl=600) is UpdateResult.UPDATED
    assert 1_190_000 < await pttl(store, index) <= 1_200_000
    assert await pttl(store, index) > await pttl(store, store.session_key("k1"))
    # An index lost meanwhile (flushed, evicted) comes back with the next extension.
    await store.client.delete(index)
    assert await store.update("k1", {"n": 3}, ttl=6000) is UpdateResult.UPDATED
    assert await store.user_keys("u1") == ["k1"]
    loaded = await store.load("k1")
    assert loaded is not None and loaded.data == {"n": 3} and loaded.version == 4


@pytest.mark.anyio
async def test_each_operation_is_one_command(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    execute = store.client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await execute(*args, **options)

    monkeypatch.setattr(store.client, "execute_command", counting)
    await store.open()  # the scripts are loaded: no NOSCRIPT round trip below
    sent.clear()

    await store.create("k1", {"a": 1, "b": [1, 2]}, ttl=TTL, user_id="u1")
    assert sent == ["EVALSHA"]
    sent.clear()
    assert await store.load("k1") is not None
    assert sent == ["HGETALL"]
    sent.clear()
    await store.update("k1", {"a": 2}, removed=["b"], ttl=TTL, expected_version=1)
    assert sent == ["EVALSHA"]
    sent.clear()
    await store.replace("k1", "k2", {"a": 2}, ttl=TTL, user_id="u1", old_user_id="u1")
    assert sent == ["EVALSHA"]
    sent.clear()
    assert await store.user_keys("u1") == ["k2"]
    assert sent == ["SMEMBERS"]
    sent.clear()
    assert await store.delete("k2", user_id="u1")
    assert sent == ["EVALSHA"]
    await store.create("k3", {"a": 1}, ttl=TTL, user_id="u1")
    await store.create("k4", {"a": 1}, ttl=TTL, user_id="u1")
    sent.clear()
    assert await store.delete_user_session("u1", "k3")
    assert sent == ["EVALSHA"]
    sent.clear()
    assert await store.delete_user_sessions("u1", keep="k5") == 1
    assert sent == ["EVALSHA"]
    sent.clear()
    await store.create("k3", {"a": 1}, ttl=TTL, user_id=None)
    assert await store.delete("k3")
    assert sent == ["EVALSHA", "DEL"]


@pytest.mark.anyio
async def test_scripts_are_reloaded_after_a_flush(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()  # of its own: a flush of the shared one would reach other tests
    try:
        async with RedisStore.from_url(f"{server.url}/0") as store:
            await store.create("k1", {"a": 1}, ttl=TTL, user_id=None)
            with server.client() as admin:
                admin.script_flush()
            assert await store.update("k1", {"a": 2}, ttl=TTL) is UpdateResult.UPDATED
            assert (await store.load("k1")) is not None
    finally:
        server.stop()


@pytest.mark.anyio
async def test_data_names_cannot_reach_the_reserved_fields(store: RedisStore) -> None:
    data = {":v": "not the version", ":u": "not the user", "::x": 1, "": 2}
    await store.create("k1", data, ttl=TTL, user_id="real")
    await store.update("k1", {":v": "still not"}, removed=["::x"], ttl=TTL)
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.version == 2 and loaded.user_id == "real"
    assert loaded.data == {":v": "still not", ":u": "not the user", "": 2}


@pytest.mark.anyio
async def test_an_empty_session_and_a_foreign_hash(store: RedisStore, shared: redis.Redis) -> None:
    await store.create("empty", {}, ttl=TTL, user_id=None)
    loaded = await store.load("empty")
    assert loaded is not None and (loaded.data, loaded.version, loaded.user_id) == ({}, 1, None)
    # A hash under the prefix that this store did not write is no session.
    shared.hset(store.session_key("foreign"), mapping={"a": "1"})
    assert await store.load("foreign") is None
    assert await store.update("foreign", {"a": 2}, ttl=TTL) is UpdateResult.MISSING


@pytest.mark.anyio
async def test_many_fields_are_written_in_chunks(store: RedisStore) -> None:
    data = {f"f{i}": i for i in range(5000)}
    await store.create("k1", data, ttl=TTL, user_id=None)
    await store.update("k1", {f"g{i}": i for i in range(3000)}, removed=[f"f{i}" for i in range(2500)], ttl=TTL)
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.data == {**{f"f{i}": i for i in range(2500, 5000)}, **{f"g{i}": i for i in range(3000)}}


HOSTILE_USER_IDS = ["*", "?", "[a-z]", "a b", "user:1", "{tag}", "\n", "ユーザー", "prefix*", "\\", "x" * 1000]


@pytest.mark.anyio
async def test_user_index_keys_are_hashes_of_hostile_ids(store: RedisStore, shared: redis.Redis) -> None:
    for number, user_id in enumerate(HOSTILE_USER_IDS):
        await store.create(f"s{number}", {"n": number}, ttl=TTL, user_id=user_id)
    for number, user_id in enumerate(HOSTILE_USER_IDS):
        assert await store.user_keys(user_id) == [f"s{number}"]
    pattern = re.escape(store.prefix) + r"(\{s\d+\}|user:[0-9a-f]{40})"
    keys = keys_of(shared, store.prefix)
    assert len(keys) == 2 * len(HOSTILE_USER_IDS)
    assert all(re.fullmatch(pattern, key) for key in keys)


# Counting.


@pytest.mark.anyio
async def test_count_scans_every_page_and_reads_the_prefix_literally(
    backend_redis: Backend, shared: redis.Redis
) -> None:
    base = backend_redis.extra["prefix"]  # the fixture deletes every key beginning with it
    prefix = base + "a*?[x]\\:"
    # Keys a pattern would match if the prefix's glob characters were read as such.
    neighbour = base + "abcdx:"
    with shared.pipeline(transaction=False) as pipe:
        for n in range(2500):
            pipe.hset(f"{prefix}{{k{n}}}", ":v", 1)
            pipe.pexpire(f"{prefix}{{k{n}}}", 60_000)
        for n in range(20):
            pipe.hset(f"{neighbour}{{k{n}}}", ":v", 1)
        pipe.sadd(f"{prefix}user:someone", "k1")  # a user's index is no session
        pipe.execute()
    url = f"redis://{HOST}:{SHARED_PORT}/0?prefix={quote(prefix, safe='')}"
    async with RedisStore.from_url(url) as store:
        assert store.session_key("k1") == f"{prefix}{{k1}}"
        assert await store.count() == 2500


@pytest.mark.anyio
async def test_count_of_a_cluster_asks_every_primary(redis_cluster_nodes: list[RedisServer]) -> None:
    prefix = f"fastapi_sessions_test:{uuid.uuid4().hex}:"
    url = f"redis+cluster://{HOST}:{redis_cluster_nodes[0].port}?prefix={quote(prefix, safe='')}"
    async with RedisStore.from_url(url) as store:
        keys = [f"k{n}" for n in range(300)]  # spread over every node's slots
        try:
            for key in keys:
                await store.create(key, {"n": 1}, ttl=TTL, user_id=None)
            assert await store.count() == 300
        finally:
            await store.client.delete(*(store.session_key(key) for key in keys))


@pytest.mark.anyio
async def test_count_needs_a_cluster_client_that_lists_its_primaries() -> None:
    client = Redis(host=HOST, port=SHARED_PORT)  # no get_primaries(): it cannot be told to scan each node
    store = RedisStore(client, cluster=True)
    try:
        with pytest.raises(NotImplementedError, match=r"does not list its primaries \(get_primaries\(\)"):
            await store.count()
    finally:
        await client.aclose()


# Least privilege.

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "stores" / "redis.md"


def documented_acl() -> tuple[list[str], list[str]]:
    """The ACL rules docs/stores/redis.md gives, and those it adds for a Cluster."""
    text = DOCS_PAGE.read_text(encoding="utf-8")
    rules = re.search(r"^\s*ACL SETUSER sessions (.+)$", text, re.MULTILINE)
    cluster = re.search(r"add `(\+cluster[^`]*)`", text)
    assert rules is not None and cluster is not None
    return rules.group(1).split(), cluster.group(1).split()


async def exercise(store: RedisStore) -> None:
    await store.create("k1", {"a": 1}, ttl=TTL, user_id="u1")
    assert await store.update("k1", {"b": 2}, removed=["a"], ttl=10 * TTL, expected_version=1) is UpdateResult.UPDATED
    assert await store.replace("k1", "k2", {"b": 2}, ttl=TTL, user_id="u1", old_user_id="u1")
    assert await store.user_keys("u1") == ["k2"]
    assert [item.data if item else None for item in await store.load_many(["k2"])] == [{"b": 2}]
    assert await store.delete("k2", user_id="u1")
    await store.create("k3", {"a": 1}, ttl=TTL, user_id="u1")
    await store.create("k4", {"a": 1}, ttl=TTL, user_id="u1")
    assert await store.delete_user_session("u1", "k3")
    assert await store.delete_user_sessions("u1", keep="k5") == 1
    assert await store.count() == 0


@pytest.mark.anyio
async def test_the_documented_acl_is_enough(tmp_path: Path) -> None:
    rules, _ = documented_acl()
    server = RedisServer(tmp_path).start()
    try:
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "sessions", *rules)
        async with RedisStore.from_url(f"redis://sessions:change-me@{HOST}:{server.port}/0") as store:
            await exercise(store)
        with server.client() as admin:
            assert admin.execute_command("ACL", "LOG") == []
    finally:
        server.stop()


@pytest.mark.anyio
async def test_the_documented_acl_is_enough_in_a_cluster(redis_cluster_nodes: list[RedisServer]) -> None:
    rules, cluster_rules = documented_acl()
    user = f"sessions-{uuid.uuid4().hex[:8]}"
    for node in redis_cluster_nodes:
        with node.client() as admin:
            admin.execute_command("ACL", "SETUSER", user, *rules, *cluster_rules)
    try:
        url = f"redis+cluster://{user}:change-me@{HOST}:{redis_cluster_nodes[0].port}"
        async with RedisStore.from_url(url) as store:
            await exercise(store)
    finally:
        for node in redis_cluster_nodes:
            with node.client() as admin:
                admin.execute_command("ACL", "DELUSER", user)


# Redis going away.


@pytest.mark.slow
def test_redis_down_is_503_and_the_session_survives_a_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persistent=True).start()
    try:
        sessions = make_manager(AuthSession, RedisStore.from_url(f"{server.url}/0?{FAST}"))
        with client(login_app(sessions)) as test_client:
            assert test_client.post("/login/alice").status_code == 200
            assert test_client.get("/me").json() == {"user": "alice"}
            cookie = test_client.cookies.get(sessions.cookie_name)
            assert cookie is not None

            server.kill()
            response = test_client.get("/me")
            assert response.status_code == 503
            assert response.headers["retry-after"] == str(sessions.settings.retry_after)
            assert response.json() == {"detail": "Session store unavailable"}
            assert set_cookies(response) == []
            assert test_client.cookies.get(sessions.cookie_name) == cookie

            # A route that never asks for the session does not need Redis.
            assert test_client.get("/health").json() == {"ok": True}

            # A login is a write: refused, and no cookie is handed out for a session that was never stored.
            jar = list(test_client.cookies.jar)
            test_client.cookies.clear()
            response = test_client.post("/login/bob")
            assert response.status_code == 503 and "retry-after" in response.headers
            assert set_cookies(response) == []
            for kept in jar:
                test_client.cookies.jar.set_cookie(kept)

            server.start()  # same port, same append-only file
            assert test_client.get("/me").json() == {"user": "alice"}
            assert test_client.post("/login/bob").status_code == 200
            assert test_client.get("/me").json() == {"user": "bob"}
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.anyio
async def test_sentinel_failover_is_503_then_the_new_master(tmp_path: Path) -> None:
    with redis_sentinel(tmp_path, replicas=1, down_after_ms=500) as setup:
        url = f"redis+sentinel://{HOST}:{setup.sentinel_port}/{SENTINEL_SERVICE}?{FAST}"
        async with RedisStore.from_url(url) as store:
            await store.create("k1", {"a": 1}, ttl=TTL, user_id="u1")
            with setup.master.client() as admin:
                assert admin.execute_command("WAIT", 1, 5000) == 1  # the replica has the session

            setup.master.kill()
            deadline = time.monotonic() + 30
            outages = 0
            while True:
                try:
                    loaded = await store.load("k1")
                    break
                except StoreUnavailableError as exc:
                    assert f"Redis Sentinel {HOST}:{setup.sentinel_port} service 'mymaster'" in str(exc)
                    outages += 1
                    assert time.monotonic() < deadline, "no failover within 30 s"
                    await asyncio.sleep(0.1)
            assert outages > 0
            assert setup.current_master_port() == setup.replicas[0].port
            assert loaded is not None and loaded.data == {"a": 1}
            assert await store.update("k1", {"a": 2}, ttl=TTL) is UpdateResult.UPDATED
            assert await store.user_keys("u1") == ["k1"]


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_cluster_node_down_is_503_for_its_slots_only(tmp_path: Path) -> None:
    with redis_cluster(tmp_path) as nodes:
        hosts = ",".join(f"{HOST}:{node.port}" for node in nodes)
        async with RedisStore.from_url(f"redis+cluster://{hosts}?{FAST}") as store:
            keys = [f"k{number}" for number in range(30)]
            for key in keys:
                await store.create(key, {"key": key}, ttl=TTL, user_id=None)
            nodes[1].kill()
            answered, refused = [], []
            for key in keys:
                try:
                    loaded = await store.load(key)
                except StoreUnavailableError as exc:
                    assert f"{HOST}:{nodes[1].port}" in str(exc)
                    refused.append(key)
                else:
                    assert loaded is not None and loaded.data == {"key": key}
                    answered.append(key)
            assert answered and refused  # the other two masters still serve their slots


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://{host}:{port}/0", "Redis {host}:{port}/0"),
        ("redis+sentinel://{host}:{port}/mymaster", "Redis Sentinel {host}:{port} service 'mymaster'"),
        ("redis+cluster://{host}:{port}", "Redis Cluster {host}:{port}"),
    ],
)
async def test_errors_name_the_store_and_the_server(url: str, where: str) -> None:
    port = free_port()
    url, where = url.format(host=HOST, port=port), where.format(host=HOST, port=port)
    async with RedisStore.from_url(f"{url}?{FAST}") as store:
        for operation in (
            store.load("k"),
            store.load_many(["k"]),
            store.create("k", {}, ttl=TTL, user_id="u"),
            store.update("k", {}, ttl=TTL),
            store.delete("k", user_id="u"),
            store.replace("k", "k2", {}, ttl=TTL, user_id=None, old_user_id=None),
            store.user_keys("u"),
        ):
            with pytest.raises(StoreUnavailableError, match=rf"^RedisStore: \w+ at {re.escape(where)} failed: "):
                await operation


@pytest.mark.anyio
async def test_a_full_redis_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        with server.client() as admin:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)  # anything already stored is over the limit
        async with RedisStore.from_url(f"{server.url}/0") as store:
            with pytest.raises(StoreUnavailableError, match="out of memory"):
                await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
            assert await store.load("k") is None  # reads still work
    finally:
        server.stop()
