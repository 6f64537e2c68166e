"""RedisStore's clients: a client the application passes in, and the client each kind of URL builds."""

import re
import ssl
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection

from fastapi_sessions import (
    SessionConfigError,
    store_from_url,
)
from fastapi_sessions.stores.redis import RedisStore, RespClient
from tests.backends.redis import SHARED_PORT, unique_prefix
from tests.redis_servers import HOST, RedisServer
from tests.support import Backend

TTL = 60.0


# Clients.


@pytest.mark.anyio
@pytest.mark.parametrize("decode_responses", [False, True])
async def test_a_client_of_the_application(backend_redis: Backend, decode_responses: bool) -> None:
    async with Redis(host=HOST, port=SHARED_PORT, decode_responses=decode_responses) as own:
        store = RedisStore(own, prefix=backend_redis.extra["prefix"])
        async with store:
            await store.create("k1", {"name": "Zoë", "n": [1]}, ttl=TTL, user_id="ユーザー")
            assert await store.update("k1", {"n": [1, 2]}, ttl=TTL, expected_version=1)
            loaded = await store.load("k1")
            assert loaded is not None
            assert (loaded.data, loaded.version, loaded.user_id) == ({"name": "Zoë", "n": [1, 2]}, 2, "ユーザー")
            assert await store.user_keys("ユーザー") == ["k1"]
            assert await store.load_many(["k1", "k2"]) == [loaded, None]
            assert await store.delete("k1", user_id="ユーザー")
        # The store did not own the client, so it is still open.
        assert await own.ping()


@pytest.mark.anyio
@pytest.mark.parametrize("decode_responses", [False, True])
async def test_a_cluster_client_of_the_application(
    redis_cluster_nodes: list[RedisServer], decode_responses: bool
) -> None:
    own = RedisCluster(host=HOST, port=redis_cluster_nodes[0].port, decode_responses=decode_responses)
    try:
        async with RedisStore(own, prefix=unique_prefix()) as store:
            await store.create("k1", {"a": 1}, ttl=TTL, user_id="u1")
            await store.create("k2", {"a": 2}, ttl=TTL, user_id="u1")
            assert sorted(await store.user_keys("u1")) == ["k1", "k2"]
            assert await store.replace("k1", "k3", {"a": 3}, ttl=TTL, user_id="u1", old_user_id="u1")
            assert sorted(await store.user_keys("u1")) == ["k2", "k3"]
            loaded = await store.load_many(["k3", "k1", "k2"])
            assert [item.data if item else None for item in loaded] == [{"a": 3}, None, {"a": 2}]
        assert await own.ping()
    finally:
        await own.aclose()


def test_anything_else_is_refused() -> None:
    with pytest.raises(SessionConfigError, match=re.escape("redis.asyncio.Redis")):
        RedisStore(redis.Redis())  # type: ignore[arg-type]


# URLs.


@pytest.mark.anyio
async def test_redis_url() -> None:
    store = RedisStore.from_url(
        "redis://me:p%40ss@cache.internal:6380/3?socket_timeout=0.5&socket_connect_timeout=0.25"
        "&max_connections=7&prefix=app%3Asessions%3A&driver=redis-py"
    )
    assert isinstance(store.client, Redis) and store.owns_client
    pool = store.client.connection_pool
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.internal", 6380, 3)
    assert (kwargs["username"], kwargs["password"]) == ("me", "p@ss")
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 0.25)
    assert pool.max_connections == 7
    assert store.prefix == "app:sessions:"
    assert store.location == "Redis cache.internal:6380/3"
    await store.close()

    store = RedisStore.from_url("redis://localhost?driver=redis-py")
    assert isinstance(store.client, Redis)
    kwargs = store.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("localhost", 6379, 0)
    assert kwargs["password"] is None and store.prefix == "fastapi_sessions:"
    await store.close()

    store = RedisStore.from_url("redis://[::1]:6390?db=2&driver=redis-py")
    assert isinstance(store.client, Redis)
    kwargs = store.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("::1", 6390, 2)
    await store.close()


@pytest.mark.anyio
async def test_redis_url_builds_the_pipelining_client_by_default() -> None:
    store = RedisStore.from_url(
        "redis://me:p%40ss@cache.internal:6380/3?socket_timeout=0.5&socket_connect_timeout=0.25"
    )
    client = store.client
    assert isinstance(client, RespClient) and store.owns_client
    assert (client.host, client.port, client.db) == ("cache.internal", 6380, 3)
    assert (client.command_timeout, client.connect_timeout) == (0.5, 0.25)
    assert store.location == "Redis cache.internal:6380/3"
    await store.close()
    for url in ("redis+cluster://n1:7000?driver=builtin", "redis://h?driver=hiredis"):
        with pytest.raises(SessionConfigError, match="driver must be one of builtin, redis-py"):
            RedisStore.from_url(url)


@pytest.mark.anyio
async def test_rediss_url() -> None:
    store = RedisStore.from_url("rediss://cache:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false")
    assert isinstance(store.client, RespClient)
    context = store.client._ssl
    assert context is not None and context.verify_mode is ssl.CERT_NONE and not context.check_hostname
    await store.close()

    store = RedisStore.from_url("rediss://cache:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false&driver=redis-py")
    assert isinstance(store.client, Redis)
    pool = store.client.connection_pool
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    assert pool.connection_kwargs["ssl_check_hostname"] is False
    await store.close()


@pytest.mark.anyio
async def test_sentinel_url() -> None:
    store = RedisStore.from_url("redis+sentinel://:secret@s1:26380,s2/mymaster?db=2&sentinel_password=s3")
    assert isinstance(store.client, Redis)
    assert store._sentinel is not None
    sentinels = [sentinel.connection_pool.connection_kwargs for sentinel in store._sentinel.sentinels]
    assert [(kwargs["host"], kwargs["port"], kwargs["password"]) for kwargs in sentinels] == [
        ("s1", 26380, "s3"),
        ("s2", 26379, "s3"),
    ]
    pool = store.client.connection_pool
    assert pool.service_name == "mymaster"  # type: ignore[attr-defined]
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (2, "secret")
    assert "mymaster" in store.location and "secret" not in store.location
    await store.close()

    store = RedisStore.from_url("rediss+sentinel://s1/mymaster?max_connections=5")
    assert isinstance(store.client, Redis)
    pool = store.client.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert pool.max_connections == 5
    await store.close()


@pytest.mark.anyio
async def test_a_unix_socket_client(tmp_path: Path) -> None:
    own = Redis(unix_socket_path=str(tmp_path / "redis.sock"))
    store = RedisStore(own)
    assert store.location == f"Redis unix:{tmp_path / 'redis.sock'}"
    assert await store.load_many([]) == []
    await own.aclose()


@pytest.mark.anyio
async def test_cluster_url() -> None:
    store = store_from_url("redis+cluster://n1:7000,n2?prefix=c%3A")
    assert isinstance(store, RedisStore) and isinstance(store.client, RedisCluster)
    assert sorted(store.client.nodes_manager.startup_nodes) == ["n1:7000", "n2:6379"]
    assert store.cluster and store.prefix == "c:"
    await store.close()
