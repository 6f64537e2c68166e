"""`RedisStore`: sessions in Redis (one server, Sentinel or Cluster), and `RespClient`, its own client.

Needs the ``redis`` extra (redis-py and hiredis). docs/stores/redis.md explains the key layout,
the URLs and the clients.
"""

from fastapi_sessions.stores.base import missing_driver

try:
    import hiredis  # noqa: F401 - the drivers, checked before the store's modules need them
    import redis.asyncio  # noqa: F401
except ImportError as exc:
    raise missing_driver("redis", "redis") from exc

from fastapi_sessions.stores.redis._protocol import RedisCommands as RedisCommands
from fastapi_sessions.stores.redis._resp import RespClient as RespClient
from fastapi_sessions.stores.redis._store import DEFAULT_PREFIX as DEFAULT_PREFIX
from fastapi_sessions.stores.redis._store import RedisStore as RedisStore

__all__ = ["DEFAULT_PREFIX", "RedisCommands", "RedisStore", "RespClient"]
