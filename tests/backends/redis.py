"""The Redis store on a single server, behind Sentinel, and on a Cluster, for the contract and HTTP suites.

``redis`` uses the shared server at 127.0.0.1:6379 with a key prefix of the test's own, deleted
afterwards, through the store's own pipelining client; ``redis-py`` does the same through redis-py.
The driver is imported by the fixtures only, so the other stores' tests run without it.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from tests.support import Backend, port_open, unavailable

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


def backend(name: str, url: str, prefix: str, query: str = "") -> Backend:
    from fastapi_sessions.stores.redis import RedisStore

    full_url = f"{url}?prefix={quote(prefix, safe='')}{query}"
    return Backend(name, lambda: RedisStore.from_url(full_url), url=full_url, extra={"prefix": prefix})


def shared_server(name: str, query: str) -> Iterator[Backend]:
    require_driver()
    if not port_open(HOST, SHARED_PORT):
        unavailable(f"no Redis server at {HOST}:{SHARED_PORT}")
    prefix = unique_prefix()
    yield backend(name, f"redis://{HOST}:{SHARED_PORT}/0", prefix, query)
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
    return backend("redis-sentinel", url, unique_prefix())


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list["RedisServer"]]:
    require_driver()
    from tests.redis_servers import redis_cluster

    with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as nodes:
        yield nodes


@pytest.fixture
def backend_redis_cluster(redis_cluster_nodes: list["RedisServer"]) -> Backend:
    hosts = ",".join(f"{HOST}:{node.port}" for node in redis_cluster_nodes)
    return backend("redis-cluster", f"redis+cluster://{hosts}", unique_prefix())
