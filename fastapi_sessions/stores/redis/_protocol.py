"""`RedisCommands`: the commands `RedisStore` sends, which any client it is given must offer.

redis-py's ``Redis`` (also from ``Sentinel.master_for``), its ``RedisCluster``, and the store's own
`RespClient` all do. The store asks nothing else of a client: a Cluster client says it is one by its
``nodes_manager`` (see `is_cluster`).
"""

import inspect
from typing import Any, Protocol

__all__ = ["RedisCommands", "RedisPipeline", "describe_client", "is_async_client", "is_cluster"]


class RedisPipeline(Protocol):
    """Commands queued and sent together; `execute` returns their replies in order."""

    def hgetall(self, name: str) -> Any: ...

    async def execute(self, raise_on_error: bool = True) -> list[Any]: ...


class RedisCommands(Protocol):
    """An asynchronous Redis client: each command returns an awaitable of its reply."""

    async def execute_command(self, *args: Any, **options: Any) -> Any: ...

    def hgetall(self, name: str) -> Any: ...

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def script_load(self, script: str) -> Any: ...

    def delete(self, *names: str) -> Any: ...

    def srem(self, name: str, *values: str) -> Any: ...

    def smembers(self, name: str) -> Any: ...

    def pipeline(self, transaction: bool = ...) -> RedisPipeline: ...

    async def aclose(self) -> None: ...


def is_async_client(client: object) -> bool:
    """Whether ``client`` sends commands asynchronously (redis-py's synchronous ``Redis`` does not)."""
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None)) and all(
        callable(getattr(client, name, None)) for name in ("hgetall", "evalsha", "eval", "pipeline", "aclose")
    )


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster, whose keys live in slots on several nodes."""
    return getattr(client, "nodes_manager", None) is not None


def describe_client(client: object) -> str:
    """Where ``client`` connects, for messages: ``Redis host:port/db``, ``Redis Cluster nodes``, ..."""
    where = getattr(client, "where", None)
    if isinstance(where, str):  # RespClient
        return f"Redis {where}"
    nodes_manager: Any = getattr(client, "nodes_manager", None)
    if nodes_manager is not None:
        return "Redis Cluster " + ",".join(node.name for node in nodes_manager.startup_nodes.values())
    pool: Any = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"Redis Sentinel service {service!r}"
    kwargs = getattr(pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"Redis unix:{kwargs['path']}"
    return f"Redis {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
