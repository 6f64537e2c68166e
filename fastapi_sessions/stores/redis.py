"""`RedisStore`: sessions in Redis (one server, Sentinel or Cluster), one hash per session.

- ``{prefix}{<key>}`` is a hash per session: a field per data field, its value as JSON, and the
  store's own fields ``:v`` (version), ``:u`` (user ID) and ``:x`` (until when the user's index is
  known to live). The braces make the key its own Cluster hash tag.
- ``{prefix}user:<hash of the user ID>`` is a set per user of the keys of the user's sessions.

Every operation is one round trip: a load is one ``HGETALL``, a write one Lua script that sets the
data and the expiry together. docs/stores/redis.md explains the rest.
"""

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import Any

from pydantic_core import from_json

from fastapi_sessions.exceptions import SessionConfigError, StoreUnavailableError
from fastapi_sessions.stores import missing_driver
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
    from redis.exceptions import (
        ClusterDownError,
        NoScriptError,
        OutOfMemoryError,
        ReadOnlyError,
        RedisClusterException,
        RedisError,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from fastapi_sessions.stores.redis_url import RedisUrl
    from fastapi_sessions.stores.resp import RespClient
except ImportError as exc:
    raise missing_driver("redis", "redis") from exc

Client = Redis | RedisCluster | RespClient

__all__ = ["RedisStore"]

logger = logging.getLogger("fastapi_sessions")

DEFAULT_PREFIX = "fastapi_sessions:"

# Redis answers these when it is down, starting, failing over, read-only or full: the request gets a 503.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,  # also BusyLoadingError, MasterNotFoundError, MaxConnectionsError
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    OutOfMemoryError,
    RedisClusterException,
    OSError,
)

_UNAVAILABLE_OR_REFUSED: tuple[type[Exception], ...] = (*_UNAVAILABLE, RedisError)

_json_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_json_decode = from_json  # pydantic-core's parser: faster than json.loads on the bytes hiredis returns

# Lua 5.1's unpack() has a stack limit of a few thousand values: write fields 1000 arguments at a time.
# Redis checks maxmemory at a script's first write only (later ones pass, so a script is never cut in
# half): each script begins with a write that adds data (HSET, SADD), never with DEL.
#
# A user's index must outlive each of the user's sessions, and an update may push a session's expiry
# past the index's. So each write sets the index to expire twice the session's ttl from now, and
# records that deadline in the session (':x', server time in ms); an update that would outlive it
# returns the user ID, and the store then extends the index (a second command, once per ttl at most).
_LUA_HELPERS = """
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function write_session(key, index, first)
  local ttl = tonumber(ARGV[1])
  if redis.call('EXISTS', key) == 1 then
    redis.call('DEL', key)
  end
  for i = first, #ARGV, 1000 do
    redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if ARGV[3] == '1' then
    redis.call('HSET', key, ':v', 1, ':u', ARGV[2], ':x', string.format('%d', now_ms() + 2 * ttl))
  else
    redis.call('HSET', key, ':v', 1)
  end
  redis.call('PEXPIRE', key, ttl)
  if index then
    redis.call('SADD', index, ARGV[4])
    if redis.call('PTTL', index) < 2 * ttl then
      redis.call('PEXPIRE', index, 2 * ttl)
    end
  end
end
"""


class _Script:
    """A Lua script run by its SHA1; a server that lacks it (restarted, flushed) gets the text once."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, client: Client, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL runs it on the node that holds the keys and caches it there for the next EVALSHA.
            return await client.eval(self.text, len(keys), *keys, *args)


# KEYS: the session hash[, the user's index]. ARGV: ttl ms, user ID, has user ('1'/'0'), index member,
# then field/value pairs.
_CREATE = _Script(_LUA_HELPERS + "write_session(KEYS[1], KEYS[2], 5)\nreturn 1\n")

# KEYS: the old hash, the new hash[, the old user's index][, the new user's index]. ARGV: as _CREATE,
# then has old index ('1'/'0'), old member, then field/value pairs. Writes nothing if the old hash is gone.
_REPLACE = _Script(
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local index = 3
if ARGV[5] == '1' then index = 4 end
write_session(KEYS[2], KEYS[index], 7)
redis.call('DEL', KEYS[1])
if ARGV[5] == '1' then redis.call('SREM', KEYS[3], ARGV[6]) end
return 1
"""
)

# KEYS: the session hash. ARGV: ttl ms, expected version or '', number of removed names n, the n names,
# then field/value pairs. Returns the new version, or the new version and the user ID when the user's
# index must be extended; -1 if there is no session, -2 on a version mismatch.
_UPDATE = _Script(
    _LUA_HELPERS
    + """
local state = redis.call('HMGET', KEYS[1], ':v', ':u', ':x')
if not state[1] then return -1 end
if ARGV[2] ~= '' and ARGV[2] ~= state[1] then return -2 end
local ttl = tonumber(ARGV[1])
local last_removed = 3 + tonumber(ARGV[3])
for i = last_removed + 1, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
for i = 4, last_removed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, last_removed)))
end
redis.call('PEXPIRE', KEYS[1], ttl)
local version = redis.call('HINCRBY', KEYS[1], ':v', 1)
if state[2] then
  local now = now_ms()
  if now + ttl > (tonumber(state[3]) or 0) then
    redis.call('HSET', KEYS[1], ':x', string.format('%d', now + 2 * ttl))
    return {version, state[2]}
  end
end
return version
"""
)

# KEYS: the session hash, the user's index. ARGV: the index member. Returns whether the hash existed.
_DELETE = _Script(
    """
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return existed
"""
)

# Adds a member to a user's index and makes the index live at least ttl ms: in Cluster, where the index
# lives in another slot than the session, and after an update that outlives the index. KEYS: the index.
# ARGV: ttl ms, member.
_INDEX_ADD = _Script(
    """
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""
)

_SCRIPTS = (_CREATE, _REPLACE, _UPDATE, _DELETE, _INDEX_ADD)


class RedisStore(SessionStore):
    """Sessions in Redis: a single server, a Sentinel-managed master, or a Cluster.

    Build it from a URL with `from_url`, or hand it a client you already have (``decode_responses``
    may be either)::

        store = RedisStore.from_url("redis://localhost:6379/0")
        store = RedisStore(redis.asyncio.Redis(host="cache"), prefix="myapp:sessions:")

    Args:
        client: A ``redis.asyncio.Redis`` (also one from ``Sentinel.master_for``), a
            ``redis.asyncio.cluster.RedisCluster``, or the store's own pipelining `RespClient`.
        prefix: Begins every key the store writes. Give each application its own.
        owns_client: Whether `close` closes ``client``. Leave ``False`` for a client the application
            shares and closes itself.
    """

    def __init__(self, client: Client, *, prefix: str = DEFAULT_PREFIX, owns_client: bool = False) -> None:
        if not isinstance(client, Redis | RedisCluster | RespClient):
            raise SessionConfigError(
                f"RedisStore needs a redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster or "
                f"fastapi_sessions.stores.resp.RespClient client, got {type(client).__name__}"
            )
        self.client = client
        self.prefix = prefix
        self.owns_client = owns_client
        self.cluster = isinstance(client, RedisCluster)
        self.location = _describe(client)
        self._sentinel: Sentinel | None = None

    # Building from a URL.

    @classmethod
    def from_url(cls, url: str) -> "RedisStore":
        """Build a store, and a client it owns, from a URL.

        - ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS;
        - ``redis+sentinel://[[user]:password@]host[:port][,host2[:port2]...]/service_name[?db=0]``
          (``rediss+sentinel://`` for TLS to the master);
        - ``redis+cluster://[[user]:password@]host[:port][,host2[:port2]...]`` (``rediss+cluster://``).

        Query options: ``prefix`` (default ``fastapi_sessions:``), ``socket_timeout`` and
        ``socket_connect_timeout`` (seconds, default 5 and 2), ``max_connections`` (per server and
        process, default 1000; an operation that would need more fails with 503), ``db``,
        ``sentinel_password``, and for TLS ``ssl_cert_reqs`` (``required``, ``optional``, ``none``),
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``.

        Raises:
            SessionConfigError: the URL is malformed or has an unknown option; the message says which.
        """
        config = RedisUrl(url)
        prefix = config.options.pop("prefix", DEFAULT_PREFIX)
        if config.kind == "cluster":
            client: Redis | RedisCluster = config.cluster_client()
            return cls(client, prefix=prefix, owns_client=True)
        if config.kind == "sentinel":
            sentinel, client = config.sentinel_client()
            store = cls(client, prefix=prefix, owns_client=True)
            store._sentinel = sentinel
            store.location = f"Redis Sentinel {config.hosts_text} service {config.service_name!r}"
            return store
        if config.options.pop("driver", "builtin") == "redis-py":
            return cls(config.redis_client(), prefix=prefix, owns_client=True)
        return cls(config.resp_client(), prefix=prefix, owns_client=True)

    # Keys.

    def session_key(self, key: str) -> str:
        """The Redis key of the hash holding session ``key``."""
        return f"{self.prefix}{{{key}}}"

    def user_index_key(self, user_id: str) -> str:
        """The Redis key of the set indexing ``user_id``'s sessions, named by a hash of the user ID."""
        digest = hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
        return f"{self.prefix}user:{digest}"

    # Lifecycle.

    async def open(self) -> None:
        """Load the scripts, so the first requests need no retry. A Redis that is down is logged, not fatal.

        The app starts anyway and answers 503 to requests that need a session until Redis is back.
        """
        try:
            if isinstance(self.client, RedisCluster):
                await self.client.initialize()
            for script in _SCRIPTS:
                await self.client.script_load(script.text)
        except _UNAVAILABLE_OR_REFUSED as exc:
            logger.warning(
                "RedisStore: %s failed at startup (%s); requests that need a session get 503 until it answers",
                self.location,
                _reason(exc),
            )

    async def close(self) -> None:
        if not self.owns_client:
            return
        await self.client.aclose()
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()

    def _unavailable(self, action: str, exc: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(f"RedisStore: {action} at {self.location} failed: {_reason(exc)}")

    # Operations.

    async def load(self, key: str) -> StoredSession | None:
        try:
            raw = await self.client.hgetall(self.session_key(key))
        except _UNAVAILABLE as exc:
            raise self._unavailable("load", exc) from exc
        return _decode(raw)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        if not keys:
            return []
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self.session_key(key))
            results = await pipe.execute()
        except _UNAVAILABLE as exc:
            raise self._unavailable("load_many", exc) from exc
        return [_decode(raw) for raw in results]

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        args = [_ttl_ms(ttl), user_id or "", "0" if user_id is None else "1", key, *_encode(data)]
        try:
            if user_id is None:
                await _CREATE(self.client, [self.session_key(key)], args)
            elif self.cluster:
                # The index lives in another slot: two scripts, sent together.
                await _together(
                    _CREATE(self.client, [self.session_key(key)], args),
                    _INDEX_ADD(self.client, [self.user_index_key(user_id)], [_ttl_ms(2 * ttl), key]),
                )
            else:
                await _CREATE(self.client, [self.session_key(key), self.user_index_key(user_id)], args)
        except _UNAVAILABLE as exc:
            raise self._unavailable("create", exc) from exc

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        args = [
            _ttl_ms(ttl),
            "" if expected_version is None else str(expected_version),
            str(len(removed)),
            *(_field_name(name) for name in removed),
            *_encode(changes),
        ]
        try:
            result = await _UPDATE(self.client, [self.session_key(key)], args)
            if isinstance(result, list):
                result, user_id = result
                user_id = user_id.decode() if isinstance(user_id, bytes) else user_id
                await _INDEX_ADD(self.client, [self.user_index_key(user_id)], [_ttl_ms(2 * ttl), key])
        except _UNAVAILABLE as exc:
            raise self._unavailable("update", exc) from exc
        if result == -1:
            return UpdateResult.MISSING
        if result == -2:
            return UpdateResult.CONFLICT
        return UpdateResult.UPDATED

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        try:
            if user_id is None:
                return bool(await self.client.delete(self.session_key(key)))
            if self.cluster:
                deleted = await _together(
                    self.client.delete(self.session_key(key)),
                    self.client.srem(self.user_index_key(user_id), key),
                )
                return bool(deleted)
            return bool(await _DELETE(self.client, [self.session_key(key), self.user_index_key(user_id)], [key]))
        except _UNAVAILABLE as exc:
            raise self._unavailable("delete", exc) from exc

    async def replace(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> bool:
        if self.cluster:
            # The two keys are in different slots: delete, then create (see SessionStore.replace).
            return await super().replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)
        keys = [self.session_key(old_key), self.session_key(new_key)]
        if old_user_id is not None:
            keys.append(self.user_index_key(old_user_id))
        if user_id is not None:
            keys.append(self.user_index_key(user_id))
        args = [
            _ttl_ms(ttl),
            user_id or "",
            "0" if user_id is None else "1",
            new_key,
            "0" if old_user_id is None else "1",
            old_key,
            *_encode(data),
        ]
        try:
            return bool(await _REPLACE(self.client, keys, args))
        except _UNAVAILABLE as exc:
            raise self._unavailable("replace", exc) from exc

    async def user_keys(self, user_id: str) -> list[str]:
        try:
            members = await self.client.smembers(self.user_index_key(user_id))
        except _UNAVAILABLE as exc:
            raise self._unavailable("user_keys", exc) from exc
        return [member.decode() if isinstance(member, bytes) else member for member in members]


def _reason(exc: Exception) -> str:
    if isinstance(exc, OutOfMemoryError):
        return "Redis is out of memory (maxmemory reached with the noeviction policy)"
    if isinstance(exc, MasterNotFoundError):
        # Its message goes on with the repr of every Sentinel client; the first clause says it all.
        return f"MasterNotFoundError: {str(exc).partition(' : ')[0]} (no Sentinel answered, or none knows a master)"
    return f"{type(exc).__name__}: {exc}"


async def _together(first: Awaitable[Any], second: Awaitable[Any]) -> Any:
    """Await both (on different Cluster nodes, so in parallel); return the first's result, raise the first error."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0]


# Encoding.


def _ttl_ms(ttl: float) -> str:
    return str(max(math.ceil(ttl * 1000), 1))


def _field_name(name: str) -> str:
    # Names beginning with ':' are the store's own (':v', ':u'); a data name that does gets one more.
    return ":" + name if name.startswith(":") else name


def _encode(data: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in data.items():
        args.append(_field_name(name))
        args.append(_json_encode(value))
    return args


def _decode(raw: Mapping[Any, Any]) -> StoredSession | None:
    names: list[str] = []
    values: list[Any] = []
    version: int | None = None
    user_id: str | None = None
    for field, value in raw.items():  # reserved fields other than ':v' and ':u' are bookkeeping (':x')
        name = field.decode() if isinstance(field, bytes) else field
        if not name.startswith(":"):
            names.append(name)
            values.append(value)
        elif name.startswith("::"):
            names.append(name[1:])
            values.append(value)
        elif name == ":v":
            version = int(value)
        elif name == ":u":
            user_id = value.decode() if isinstance(value, bytes) else value
    if version is None:  # no such key (an empty reply), or not a hash this store wrote
        return None
    # Each value is a JSON text: parsing them as one array is one call into the C parser, not one per field.
    if not values:
        return StoredSession({}, version, user_id)
    joined = b"[" + b",".join(values) + b"]" if isinstance(values[0], bytes) else "[" + ",".join(values) + "]"
    return StoredSession(dict(zip(names, _json_decode(joined), strict=True)), version, user_id)


def _describe(client: Client) -> str:
    if isinstance(client, RespClient):
        return f"Redis {client.where}"
    if isinstance(client, RedisCluster):
        nodes = ",".join(node.name for node in client.nodes_manager.startup_nodes.values())
        return f"Redis Cluster {nodes}"
    pool = client.connection_pool
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"Redis Sentinel service {service!r}"
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"Redis unix:{kwargs['path']}"
    return f"Redis {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
