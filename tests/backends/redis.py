"""The Redis store on a single server, behind Sentinel, and on a Cluster, for the contract and HTTP suites.

``redis`` uses the shared server at 127.0.0.1:6379 with a key prefix of the test's own, deleted
afterwards, through the store's own pipelining client; ``redis-py`` does the same through redis-py.
The driver is imported by the fixtures only, so the other stores' tests run without it.
"""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from fastapi_sessions import SessionStore
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions, unknown
from tests.support import Backend, Driver, free_port, port_open, unavailable

if TYPE_CHECKING:
    from tests.redis_servers import RedisServer, SentinelSetup

BACKENDS = ["redis", "redis-py", "redis-sentinel", "redis-cluster"]

HOST = "127.0.0.1"
SHARED_PORT = 6379


def unique_prefix() -> str:
    return f"fastapi_sessions_test:{uuid.uuid4().hex}:"


def require_driver() -> None:
    try:
        import fastapi_sessions.stores.redis  # noqa: F401
    except ImportError as exc:
        unavailable(str(exc))


FAST = "socket_connect_timeout=0.5&socket_timeout=0.5"

BAD_URLS = {
    "http://localhost": "unknown scheme 'http' for RedisStore; use one of redis://, rediss://",
    "redis+sentinel://s1:26379": "name the Sentinel service",
    "redis+sentinel://s1:26379/a/b": "name the Sentinel service",
    "redis://h:port": "bad port 'port'",
    "redis://h:70000": "bad port '70000'",
    "redis://:6379": "missing host",
    "redis://h/zero": "database number",
    "redis://a,b": "give one host",
    "redis://h?bogus=1": "unknown option 'bogus'; the options are db, driver, max_connections, prefix",
    "redis://h?socket_timeout=soon": "socket_timeout must be a number above 0, got 'soon'",
    "redis://h?socket_timeout=0": "socket_timeout must be a number above 0, got '0'",
    "redis://h?socket_connect_timeout=inf": "socket_connect_timeout must be a number above 0, got 'inf'",
    "redis://h?max_connections=0": "max_connections must be an integer of at least 1, got '0'",
    "redis://h?db=-1": "db must be an integer of at least 0, got '-1'",
    "rediss://h?ssl_cert_reqs=maybe": "ssl_cert_reqs must be one of required, optional, none, got 'maybe'",
    "rediss://h?ssl_check_hostname=perhaps": "ssl_check_hostname must be true or false",
    "redis+cluster://h/3": "only database 0",
    "redis+cluster://h?db=1": "only database 0",
    "redis://[::1": "Invalid IPv6 URL",
    "redis+cluster://n1:7000?driver=builtin": "driver must be one of builtin, redis-py",
    "redis://h?driver=hiredis": "driver must be one of builtin, redis-py",
}


def redis_of(store: SessionStore) -> Any:
    from fastapi_sessions.stores.redis import RedisStore

    assert isinstance(store, RedisStore)
    return store


async def age(store: SessionStore, key: str, seconds: float) -> None:
    redis_store = redis_of(store)
    name = redis_store.session_key(key)
    remaining = int(await redis_store.client.execute_command("PTTL", name))
    if remaining > 0:  # Redis removes a key whose expiry has passed: PEXPIRE to the past deletes it
        await redis_store.client.execute_command("PEXPIRE", name, remaining - int(seconds * 1000))


# A hash the store did not write (no ':v') is no session, without an error: tests/test_redis_store.py.
CORRUPTIONS = ("not-json", "several-json-texts", "version-not-integer", "format-not-integer", "a-string", "a-list")


async def corrupt(store: SessionStore, key: str, how: str) -> None:
    client = redis_of(store).client
    name = redis_of(store).session_key(key)
    if how == "not-json":
        await client.execute_command("HSET", name, "note", '{"secret": "s3cr3t"')
    elif how == "several-json-texts":
        await client.execute_command("HSET", name, "note", '"s3cr3t", "extra"')
    elif how == "version-not-integer":
        await client.execute_command("HSET", name, ":v", "s3cr3t")
    elif how == "format-not-integer":
        await client.execute_command("HSET", name, ":f", "s3cr3t")
    elif how == FUTURE:
        await client.execute_command("HSET", name, ":f", str(FUTURE_VERSION))
    elif how in ("a-string", "a-list"):
        await client.execute_command("DEL", name)
        await client.execute_command(*(("SET", name) if how == "a-string" else ("RPUSH", name)), "s3cr3t")
        await client.execute_command("PEXPIRE", name, 60_000)
    else:
        raise unknown(how)


async def strip_format(store: SessionStore, key: str) -> None:
    await redis_of(store).client.execute_command("HDEL", redis_of(store).session_key(key), ":f")


def dumper(connect: Callable[[], Any]) -> Callable[[SessionStore], Any]:
    """Reads every key under the store's prefix, and what each holds, through a synchronous client."""

    async def dump(store: SessionStore) -> str:
        prefix = redis_of(store).prefix
        with connect() as client:
            found = []
            for name in client.scan_iter(match=f"{prefix}*", count=1000):
                kind = client.type(name)
                if kind == b"hash":
                    found.append((name, client.hgetall(name)))
                elif kind == b"set":
                    found.append((name, client.smembers(name)))
                else:  # a corrupt record of the contract suite
                    found.append((name, kind))
        return repr(found)

    return dump


def backend(name: str, url: str, prefix: str, connect: Callable[[], Any], query: str = "") -> Backend:
    from fastapi_sessions.stores.redis import RedisStore

    full_url = f"{url}?prefix={quote(prefix, safe='')}{query}"
    scheme, _, _ = url.partition("://")
    path = "/mymaster" if "sentinel" in scheme else "/0" if "cluster" not in scheme else ""
    return Backend(
        name,
        lambda: RedisStore.from_url(full_url),
        url=full_url,
        extra={"prefix": prefix, "corruptions": Corruptions(corrupt, CORRUPTIONS, strip_format)},
        age=age,
        dump=dumper(connect),
        server_expires=True,
        from_url=RedisStore.from_url,
        unreachable_url=f"{scheme}://{HOST}:{free_port()}{path}?{FAST}{query}",
        bad_urls=BAD_URLS,
        driver=Driver(("redis",), "redis", "fastapi_sessions.stores.redis"),
    )


def shared_client() -> Any:
    import redis

    return redis.Redis(host=HOST, port=SHARED_PORT, db=0)


def shared_server(name: str, query: str) -> Iterator[Backend]:
    require_driver()
    if not port_open(HOST, SHARED_PORT):
        unavailable(f"no Redis server at {HOST}:{SHARED_PORT}")
    prefix = unique_prefix()
    yield backend(name, f"redis://{HOST}:{SHARED_PORT}/0", prefix, shared_client, query)
    import redis

    with redis.Redis(host=HOST, port=SHARED_PORT, db=0) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def backend_redis() -> Iterator[Backend]:
    yield from shared_server("redis", "")


@pytest.fixture
def backend_redis_py() -> Iterator[Backend]:
    yield from shared_server("redis-py", "&driver=redis-py")


@pytest.fixture(scope="session")
def redis_sentinel_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator["SentinelSetup"]:
    require_driver()
    from tests.redis_servers import redis_sentinel

    with redis_sentinel(Path(tmp_path_factory.mktemp("redis-sentinel"))) as setup:
        yield setup


@pytest.fixture
def backend_redis_sentinel(redis_sentinel_setup: "SentinelSetup") -> Backend:
    from tests.redis_servers import SENTINEL_SERVICE

    url = f"redis+sentinel://{HOST}:{redis_sentinel_setup.sentinel_port}/{SENTINEL_SERVICE}"
    return backend("redis-sentinel", url, unique_prefix(), redis_sentinel_setup.master.client)


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list["RedisServer"]]:
    require_driver()
    from tests.redis_servers import redis_cluster

    with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as nodes:
        yield nodes


@pytest.fixture
def backend_redis_cluster(redis_cluster_nodes: list["RedisServer"]) -> Backend:
    import redis.cluster

    hosts = ",".join(f"{HOST}:{node.port}" for node in redis_cluster_nodes)

    def connect() -> Any:
        return redis.cluster.RedisCluster(host=HOST, port=redis_cluster_nodes[0].port)

    return backend("redis-cluster", f"redis+cluster://{hosts}", unique_prefix(), connect)
