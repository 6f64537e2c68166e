"""`RedisStore`: sessions in Redis (one server, Sentinel or Cluster), one hash per session.

- ``{prefix}{<key>}`` is a hash per session: a field per data field, its value as JSON, and the
  store's own fields ``:v`` (version), ``:f`` (format version), ``:u`` (user ID) and ``:x`` (until
  when the user's index is known to live). The braces make the key its own Cluster hash tag.
- ``{prefix}user:<hash of the user ID>`` is a set per user of the keys of the user's sessions.
- In Cluster only, ``{prefix}revoked:<hash of the user ID>`` counts the revocations of all of a
  user's sessions, and each of the user's sessions records in ``:g`` the count it was issued under.

Every operation is one round trip: a load is one ``HGETALL``, a write one Lua script that sets the
data and the expiry together. docs/stores/redis.md explains the rest.
"""

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import Any, ClassVar, NoReturn

from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastapi_sessions.exceptions import SessionConfigError, StoreUnavailableError
from fastapi_sessions.stores._records import readable
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult
from fastapi_sessions.stores.redis._hash import decode_hash, encode_fields, field_name, wrong_type
from fastapi_sessions.stores.redis._protocol import RedisCommands, describe_client, is_async_client, is_cluster
from fastapi_sessions.stores.redis._scripts import (
    CREATE,
    DELETE,
    DELETE_OWNED,
    DELETE_USER,
    GENERATION,
    INDEX_ADD,
    KEEP,
    NEXT_GENERATION,
    REPLACE,
    SCRIPTS,
    TAKE,
    UPDATE,
)
from fastapi_sessions.stores.redis._url import RedisUrl

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

logger = logging.getLogger("fastapi_sessions")

DEFAULT_PREFIX = "fastapi_sessions:"


class RedisStore(SessionStore):
    """Sessions in Redis: a single server, a Sentinel-managed master, or a Cluster.

    Build it from a URL with `from_url`, or hand it a client you already have (``decode_responses``
    may be either)::

        store = RedisStore.from_url("redis://localhost:6379/0")
        store = RedisStore(redis.asyncio.Redis(host="cache"), prefix="myapp:sessions:")

    Args:
        client: A ``redis.asyncio.Redis`` (also one from ``Sentinel.master_for``), a
            ``redis.asyncio.cluster.RedisCluster``, the store's own pipelining `RespClient`, or any
            client offering the `RedisCommands` the store sends.
        prefix: Begins every key the store writes. Give each application its own.
        owns_client: Whether `close` closes ``client``. Leave ``False`` for a client the application
            shares and closes itself.
        cluster: Whether ``client`` talks to a Redis Cluster; by default, whether it has redis-py's
            ``nodes_manager``, as ``RedisCluster`` does.

    Raises:
        SessionConfigError: ``client`` is not an asynchronous Redis client.
    """

    # Redis answers these when it is down, starting, failing over, read-only or full: the request gets a 503.
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        RedisConnectionError,  # also BusyLoadingError, MasterNotFoundError, MaxConnectionsError
        RedisTimeoutError,
        ClusterDownError,
        TryAgainError,
        ReadOnlyError,
        OutOfMemoryError,
        RedisClusterException,
    )

    def __init__(
        self,
        client: RedisCommands,
        *,
        prefix: str = DEFAULT_PREFIX,
        owns_client: bool = False,
        cluster: bool | None = None,
    ) -> None:
        if not is_async_client(client):
            raise SessionConfigError(
                f"RedisStore needs an asynchronous client: a redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster "
                f"or fastapi_sessions.stores.redis.RespClient, got {type(client).__name__}"
            )
        self.client = client
        self.prefix = prefix
        self.owns_client = owns_client
        self.cluster = is_cluster(client) if cluster is None else cluster
        self._location = describe_client(client)
        self._sentinel: Sentinel | None = None

    @property
    def location(self) -> str:
        return self._location

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
            return cls(config.cluster_client(), prefix=prefix, owns_client=True, cluster=True)
        if config.kind == "sentinel":
            sentinel, client = config.sentinel_client()
            store = cls(client, prefix=prefix, owns_client=True)
            store._sentinel = sentinel
            store._location = f"Redis Sentinel {config.hosts_text} service {config.service_name!r}"
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
        return f"{self.prefix}user:{_user_digest(user_id)}"

    def user_generation_key(self, user_id: str) -> str:
        """The Redis key counting revocations of ``user_id``'s sessions (Cluster only; see `delete_user_sessions`)."""
        return f"{self.prefix}revoked:{_user_digest(user_id)}"

    # Lifecycle.

    async def open(self) -> None:
        """Load the scripts, so the first requests need no retry. A Redis that is down is logged, not fatal.

        The app starts anyway and answers 503 to requests that need a session until Redis is back.
        """
        try:
            with self.translating("open"):
                initialize = getattr(self.client, "initialize", None)  # a Cluster client learns its nodes
                if self.cluster and initialize is not None:
                    await initialize()
                for script in SCRIPTS:
                    await self.client.script_load(script.text)
        except StoreUnavailableError as exc:
            self.warn_unavailable_at_open(exc)
        except RedisError as exc:  # refused (no permission for SCRIPT LOAD...): the scripts load on first use
            logger.warning("RedisStore: open at %s: %s", self.location, self.describe_error(exc))

    async def close(self) -> None:
        if not self.owns_client:
            return
        await self.client.aclose()
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, OutOfMemoryError):
            return "Redis is out of memory (maxmemory reached with the noeviction policy)"
        if isinstance(exc, MasterNotFoundError):
            # Its message goes on with the repr of every Sentinel client; the first clause says it all.
            first = str(exc).partition(" : ")[0]
            return f"MasterNotFoundError: {first} (no Sentinel answered, or none knows a master)"
        return super().describe_error(exc)

    # Operations.

    def _failed(self, operation: str) -> NoReturn:
        """Raise the error being handled, translated as `translating` does.

        For the operations of every request (load, update), which so enter no context manager when Redis answers.
        """
        with self.translating(operation):
            raise  # the error being handled: called from except blocks only

    async def load(self, key: str) -> StoredSession | None:
        try:
            raw = await self.client.hgetall(self.session_key(key))
        except ResponseError as exc:
            if not wrong_type(exc):
                self._failed("load")
            raw = exc
        except Exception:
            self._failed("load")
        return decode_hash(self, "load", raw)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        if not keys:
            return []
        with self.translating("load_many"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self.session_key(key))
            results = await pipe.execute(raise_on_error=False)
            for result in results:  # an error other than a key of the wrong type fails them all
                if isinstance(result, BaseException) and not wrong_type(result):
                    raise result
        return [readable(lambda raw: decode_hash(self, "load_many", raw), raw) for raw in results]

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        args = [_ttl_ms(ttl), user_id or "", "0" if user_id is None else "1", key, *encode_fields(data)]
        with self.translating("create"):
            if user_id is None:
                await CREATE(self.client, [self.session_key(key)], args)
            elif self.cluster:
                await self._create_in_cluster(key, args, ttl, user_id, await self._generation(user_id))
            else:
                await CREATE(self.client, [self.session_key(key), self.user_index_key(user_id)], args)

    async def _create_in_cluster(self, key: str, args: list[str], ttl: float, user_id: str, generation: int) -> None:
        # The index lives in another slot: two scripts, sent together.
        await _together(
            CREATE(self.client, [self.session_key(key)], [*args, ":g", str(generation)]),
            INDEX_ADD(self.client, [self.user_index_key(user_id)], [_ttl_ms(2 * ttl), key]),
        )

    async def _generation(self, user_id: str) -> int:
        return _number(await GENERATION(self.client, [self.user_generation_key(user_id)], []))

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
            *(field_name(name) for name in removed),
            *encode_fields(changes),
        ]
        try:
            result = await UPDATE(self.client, [self.session_key(key)], args)
            if isinstance(result, list):
                result, user_id = result
                user_id = user_id.decode() if isinstance(user_id, bytes) else user_id
                await INDEX_ADD(self.client, [self.user_index_key(user_id)], [_ttl_ms(2 * ttl), key])
        except Exception:
            self._failed("update")
        if result == -1:
            return UpdateResult.MISSING
        if result == -2:
            return UpdateResult.CONFLICT
        return UpdateResult.UPDATED

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        with self.translating("delete"):
            if user_id is None:
                return bool(await self.client.delete(self.session_key(key)))
            if self.cluster:
                deleted = await _together(
                    self.client.delete(self.session_key(key)),
                    self.client.srem(self.user_index_key(user_id), key),
                )
                return bool(deleted)
            return bool(await DELETE(self.client, [self.session_key(key), self.user_index_key(user_id)], [key]))

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
            return await self._replace_in_cluster(
                old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id
            )
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
            *encode_fields(data),
        ]
        with self.translating("replace"):
            return bool(await REPLACE(self.client, keys, args))

    async def _replace_in_cluster(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> bool:
        # The two keys are in different slots: delete, then create (see SessionStore.replace); then,
        # against a concurrent delete_user_sessions, check that the user's generation has not moved on.
        with self.translating("replace"):
            take = TAKE(self.client, [self.session_key(old_key)], [])
            if old_user_id is None:
                taken = await take
            else:
                taken = await _together(take, self.client.srem(self.user_index_key(old_user_id), old_key))
            if taken is None:
                return False
            if user_id is None:
                args = [_ttl_ms(ttl), "", "0", new_key, *encode_fields(data)]
                await CREATE(self.client, [self.session_key(new_key)], args)
                return True
            generation = _number(taken) if user_id == old_user_id else await self._generation(user_id)
            args = [_ttl_ms(ttl), user_id, "1", new_key, *encode_fields(data)]
            await self._create_in_cluster(new_key, args, ttl, user_id, generation)
            if await self._generation(user_id) > generation:
                await self.delete(new_key, user_id=user_id)
                return False
        return True

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete every session of ``user_id`` but ``keep``; how many were live.

        On one server (or behind Sentinel), one script reads the index and deletes the sessions: no
        regeneration runs in between. In Cluster the sessions live in other slots than the index,
        so no one script can reach them; the store advances the user's revocation generation first,
        then deletes every key in the index. A regeneration that finishes before the generation
        moved put its new key in the index first, so it is deleted; one that finishes after sees
        the generation past the one its session was issued under and deletes its new session itself.
        So before the regeneration returns, and the client can present the new ID, the new
        session is gone.
        """
        index = self.user_index_key(user_id)
        with self.translating("delete_user_sessions"):
            if not self.cluster:
                return int(await DELETE_USER(self.client, [index], [self.prefix, keep or ""]))
            generation = await NEXT_GENERATION(self.client, [self.user_generation_key(user_id)], [])
            if keep is not None:
                await KEEP(self.client, [self.session_key(keep)], [str(generation)])
            members = [key for key in await self._members(index) if key != keep]
            deleted = await asyncio.gather(*(self.client.delete(self.session_key(key)) for key in members))
            if members:
                await self.client.srem(index, *members)
        return sum(1 for existed in deleted if existed)

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        if self.cluster:  # the index and the session live in different slots; a key never changes owner
            return await super().delete_user_session(user_id, key)
        with self.translating("delete_user_session"):
            return bool(await DELETE_OWNED(self.client, [self.session_key(key), self.user_index_key(user_id)], [key]))

    async def user_keys(self, user_id: str) -> list[str]:
        with self.translating("user_keys"):
            return await self._members(self.user_index_key(user_id))

    async def count(self) -> int:
        """The sessions under the store's prefix, found with ``SCAN``: this walks the whole database.

        Redis keeps no count of the keys matching a prefix, and a counter kept by the store's writes
        would drift, since Redis expires keys without telling anyone. So the store runs ``SCAN`` with
        ``MATCH`` over every key of the database (the application's other keys too), about one round
        trip per 1,000 keys, on every primary of a Cluster. ``SCAN`` never blocks Redis as ``KEYS``
        does and skips expired keys; it may return a key twice, so the names are collected in a set
        held in this process. Meant for an operator's occasional count: for a database of millions of
        keys, raise ``SESSION_STORE_TIMEOUT`` for the command.

        Raises:
            NotImplementedError: a Cluster client that cannot list its primary nodes.
        """
        pattern = _glob_escape(self.prefix) + "{*}"
        with self.translating("count"):
            if not self.cluster:
                return len(await self._scan(pattern))
            get_primaries = getattr(self.client, "get_primaries", None)
            if get_primaries is None:
                raise NotImplementedError(
                    f"RedisStore cannot count the sessions of a Cluster through a {type(self.client).__name__}: "
                    "it does not list its primaries (get_primaries(), as redis-py's RedisCluster does)"
                )
            found: set[Any] = set()
            for node in get_primaries():
                found |= await self._scan(pattern, target_nodes=node)
        return len(found)

    async def _scan(self, pattern: str, **options: Any) -> set[Any]:
        found: set[Any] = set()
        cursor = 0
        while True:
            reply = await self.client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000, **options)
            cursor, names = _scan_reply(reply)
            found.update(names)
            if cursor == 0:
                return found

    async def _members(self, index: str) -> list[str]:
        members = await self.client.smembers(index)
        return [member.decode() if isinstance(member, bytes) else member for member in members]


async def _together(first: Awaitable[Any], second: Awaitable[Any]) -> Any:
    """Await both (on different Cluster nodes, so in parallel); return the first's result, raise the first error."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0]


# Encoding.


def _user_digest(user_id: str) -> str:
    return hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def _number(reply: Any) -> int:
    """A generation as Redis answers it (an integer, or the text of one); ``0`` for anything else."""
    try:
        return int(reply)
    except (TypeError, ValueError):
        return 0


def _ttl_ms(ttl: float) -> str:
    return str(max(math.ceil(ttl * 1000), 1))


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _scan_reply(reply: Any) -> tuple[int, list[Any]]:
    """The cursor and key names of a ``SCAN`` reply, as the built-in client, redis-py or its Cluster client give it."""
    cursor, names = reply
    if isinstance(cursor, dict):  # redis-py's Cluster client: the cursor of each node asked
        (cursor,) = cursor.values()
    return int(cursor), list(names)
