"""`PostgresStore`: sessions in a PostgreSQL table, through asyncpg."""

import asyncio
import inspect
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg

from fastapi_sessions.exceptions import SessionConfigError, StoreError, StoreUnavailableError
from fastapi_sessions.stores._records import FORMAT_VERSION, decode_record, readable
from fastapi_sessions.stores._url import Bool, Float, Int, StoreUrl, Text
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult, unavailable
from fastapi_sessions.stores.postgres._sql import Statements
from fastapi_sessions.stores.postgres._text import (
    dumps,
    escape_text,
    field_name,
    loads,
    record,
    stored_user,
    user_of,
)

if TYPE_CHECKING:
    Pool = asyncpg.Pool[asyncpg.Record]

__all__ = ["PostgresStore"]

logger = logging.getLogger("fastapi_sessions")

# The store's own URL options; every other option goes to asyncpg with the DSN (sslmode, server settings).
_OPTIONS = {
    "table": Text(),
    "create_table": Bool(),
    "cleanup_interval": Float(),
    "cleanup_batch": Int(minimum=1),
    "command_timeout": Float(positive=True),
    "connect_timeout": Float(positive=True),
    "min_size": Int(),
    "max_size": Int(minimum=1),
    "statement_cache_size": Int(),
}


async def _keep_session_state(connection: Any) -> None:
    """Reset of the store's own pool on release: nothing to undo, so no extra round trip.

    The store never leaves session state on a connection (no SET, LISTEN or session-level lock), and
    asyncpg still rolls back a transaction left open before calling this.
    """


# asyncpg resets a connection with one more query on every release unless told otherwise (0.30+).
_POOL_RESET = {"reset": _keep_session_state} if "reset" in inspect.signature(asyncpg.create_pool).parameters else {}


class PostgresStore(SessionStore):
    """Sessions in a PostgreSQL table: one row per session, the data in a ``jsonb`` column.

    Expiry is by the database's clock (``now()``), so every app server agrees on it. Updates are a
    single ``UPDATE`` that merges the changed fields into the stored document, so concurrent requests
    changing different fields never lose each other's writes. A background task deletes expired rows.

    Args:
        pool: An asyncpg pool to use. The store never closes a pool it was given.
        dsn: A ``postgresql://`` DSN to create a pool from instead (see `from_url`).
        table: The table, optionally schema-qualified (``web.sessions``). Created on `open`.
        create_table: Create the table and its indexes on `open` if they do not exist. Turn off when
            the app's database user may not run DDL and the table is created by a migration.
        cleanup_interval: Seconds between deletions of expired rows by the background task; ``0``
            disables the task (call `cleanup` from a scheduled job instead).
        cleanup_batch: Rows deleted per statement by `cleanup`.
        command_timeout: Seconds a query may run (asyncpg's ``command_timeout``) for a pool the
            store creates.
        connect_timeout: Seconds to establish a connection, for a pool the store creates.
        min_size: Connections the store's pool keeps open.
        max_size: Most connections the store's pool opens.
        statement_cache_size: asyncpg's prepared statement cache per connection; set ``0`` behind
            PgBouncer in transaction pooling mode.

    Raises:
        SessionConfigError: the table name or an option is invalid.
    """

    # The server is down, unreachable, refusing connections or too slow: answered with 503.
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.InterfaceError,
    )
    failure_errors: ClassVar[tuple[type[BaseException], ...]] = (asyncpg.PostgresError,)

    def __init__(
        self,
        pool: "Pool | None" = None,
        *,
        dsn: str | None = None,
        table: str = "fastapi_sessions",
        create_table: bool = True,
        cleanup_interval: float = 300.0,
        cleanup_batch: int = 1000,
        command_timeout: float | None = 5.0,
        connect_timeout: float = 5.0,
        min_size: int = 1,
        max_size: int = 10,
        statement_cache_size: int = 100,
    ) -> None:
        if (pool is None) == (dsn is None):
            raise SessionConfigError("PostgresStore needs either an asyncpg pool or a dsn (exactly one of them)")
        if cleanup_interval < 0 or cleanup_batch < 1:
            raise SessionConfigError("PostgresStore cleanup_interval must be >= 0 and cleanup_batch >= 1")
        if min_size < 0 or max_size < 1 or min_size > max_size:
            raise SessionConfigError("PostgresStore pool sizes need 0 <= min_size <= max_size and max_size >= 1")
        self.table = table
        self.create_table = create_table
        self.cleanup_interval = cleanup_interval
        self.cleanup_batch = cleanup_batch
        self._pool = pool
        self._owns_pool = pool is None
        self._dsn = dsn
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "command_timeout": command_timeout,
            "timeout": connect_timeout,
            "statement_cache_size": statement_cache_size,
            **_POOL_RESET,
        }
        self._server = "the application's pool" if dsn is None else _server_name(dsn)
        self._live: Pool | None = None
        """The pool once it and the table are ready: the one check on each operation's way."""
        self._setup_lock: asyncio.Lock | None = None
        self._sql = Statements(table)

    @classmethod
    def from_url(cls, url: str) -> "PostgresStore":
        """Build from a DSN such as ``postgresql://user:password@host:5432/db?table=sessions``.

        The store's own options (``table``, ``create_table``, ``cleanup_interval``, ``cleanup_batch``,
        ``command_timeout``, ``connect_timeout``, ``min_size``, ``max_size``, ``statement_cache_size``)
        are taken out of the query string; the rest of the DSN (``sslmode`` and so on) goes to asyncpg.
        """
        config = StoreUrl(url, "PostgresStore")
        config.hosts(5432)  # checks each host and port
        options, passed = config.options(_OPTIONS, driver_takes=lambda name: True)
        query = "?" + "&".join(passed) if passed else ""
        with config.building():
            return cls(dsn=f"{config.scheme}://{config.userinfo()}{config.hosts_text}{config.path}{query}", **options)

    @property
    def location(self) -> str:
        return f"PostgreSQL {self._server} (table {self.table})"

    @property
    def pool(self) -> "Pool | None":
        """The asyncpg pool in use: the one given, or the one the store created (``None`` until it did).

        An app can run its own queries on the store's pool instead of opening a second one, as long
        as they leave no session state behind (``SET`` without ``LOCAL``, ``LISTEN``, session-level
        advisory locks): to save a round trip per operation, connections are not reset on release.
        """
        return self._pool

    # Lifecycle.

    async def open(self) -> None:
        """Create the pool and the table, and start the cleanup task.

        A server that cannot be reached now is not fatal: the app starts, requests needing a session
        answer 503, and the pool and table are set up on the first operation that reaches it.
        """
        self._setup_lock = asyncio.Lock()
        try:
            await self._ready_pool()
        except StoreUnavailableError as exc:
            self.warn_unavailable_at_open(exc)
        self.start_cleanup(self.cleanup_interval)

    async def close(self) -> None:
        """Stop the cleanup task and close the pool if the store created it."""
        await self.stop_cleanup()
        self._live = None
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=self._pool_options["timeout"])
            except Exception as exc:
                if unavailable(self, "close", exc) is None:
                    raise
                pool.terminate()  # a server that is gone cannot say goodbye

    async def _ready_pool(self) -> "Pool":
        """The pool, after creating it and the table on first use."""
        if self._live is not None:
            return self._live
        if self._setup_lock is None:
            self._setup_lock = asyncio.Lock()
        async with self._setup_lock:
            if self._live is None:
                with self.translating("open"):
                    if self._pool is None:
                        self._pool = await asyncpg.create_pool(self._dsn, **self._pool_options)
                    if self.create_table:
                        await self._create_table(self._pool)
                self._live = self._pool
            return self._live

    async def _create_table(self, pool: "Pool") -> None:
        async with pool.acquire() as connection:
            try:
                async with connection.transaction():
                    # Several workers start at once; CREATE ... IF NOT EXISTS alone can still collide
                    # on the catalog, so they take turns.
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", self._sql.lock_id)
                    await connection.execute(self._sql.ddl)
            except asyncpg.exceptions.InsufficientPrivilegeError as exc:
                # PostgreSQL checks the right to create before noticing the table exists.
                if await connection.fetchval("SELECT to_regclass($1)", self._sql.quoted) is None:
                    raise StoreError(
                        f"PostgresStore cannot create table {self.table} at {self._server}: {exc}; create it with "
                        "the statements of the PostgreSQL store's documentation, or grant CREATE on the schema"
                    ) from exc
                logger.warning(
                    "PostgresStore: using the existing table %s; the database user may not create tables (%s), "
                    "so missing indexes are not added: pass create_table=false to skip this check",
                    self.table,
                    exc,
                )

    # The store interface.

    async def load(self, key: str) -> StoredSession | None:
        pool = self._live or await self._ready_pool()
        with self.translating("load"):
            row = await pool.fetchrow(self._sql.load, key)
        return None if row is None else self._decode("load", row)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        if not keys:
            return []
        pool = await self._ready_pool()
        with self.translating("load_many"):
            rows = await pool.fetch(self._sql.load_many, list(keys))
        found = {row[0]: readable(lambda row: self._decode("load_many", row[1:]), row) for row in rows}
        return [found.get(key) for key in keys]

    def _decode(self, operation: str, row: "asyncpg.Record | Sequence[Any]") -> StoredSession:
        """The session in a row of ``data, version, user_id``."""
        data, version, user_id = row
        document, format_version = loads(data)
        return decode_record(
            self,
            operation,
            data=document,
            version=version,
            user_id=user_of(user_id),
            format_version=format_version,
        )

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        pool = await self._ready_pool()
        with self.translating("create"):
            await pool.execute(self._sql.create, key, record(data, FORMAT_VERSION), stored_user(user_id), float(ttl))

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        pool = self._live or await self._ready_pool()
        names = [field_name(name) for name in removed] if removed else []
        with self.translating("update"):
            if expected_version is None:
                version = await pool.fetchval(self._sql.update, key, names, dumps(changes), float(ttl))
                return UpdateResult.MISSING if version is None else UpdateResult.UPDATED
            row = await pool.fetchrow(
                self._sql.update_versioned, key, names, dumps(changes), float(ttl), expected_version
            )
        if row is None:
            return UpdateResult.MISSING
        return UpdateResult.CONFLICT if row[0] is None else UpdateResult.UPDATED

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        pool = await self._ready_pool()
        with self.translating("delete"):
            live = await pool.fetchval(self._sql.delete, key)
        return bool(live)

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
        pool = await self._ready_pool()
        arguments = (old_key, new_key, record(data, FORMAT_VERSION), stored_user(user_id), float(ttl))
        with self.translating("replace"):
            try:
                moved = await pool.fetchval(self._sql.rekey, *arguments)
            except asyncpg.exceptions.UniqueViolationError:
                # A leftover row holds the new key: delete it and move the session in one transaction.
                # Rare (a new key is random), so the usual move costs one statement, not four.
                async with pool.acquire() as connection, connection.transaction():
                    await connection.execute(self._sql.delete, new_key)
                    moved = await connection.fetchval(self._sql.rekey, *arguments)
        return moved is not None

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        # One statement. A row that a regeneration moves meanwhile is followed to its new key (see
        # Statements.rekey); a session that leaves the user (a switch of user) is left to its new one.
        pool = await self._ready_pool()
        with self.translating("delete_user_sessions"):
            rows = await pool.fetch(self._sql.delete_user, escape_text(user_id), keep)
        return sum(1 for row in rows if row[0])

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        pool = await self._ready_pool()
        with self.translating("delete_user_session"):
            live = await pool.fetchval(self._sql.delete_owned, key, escape_text(user_id))
        return bool(live)

    async def user_keys(self, user_id: str) -> list[str]:
        pool = await self._ready_pool()
        with self.translating("user_keys"):
            rows = await pool.fetch(self._sql.user_keys, escape_text(user_id))
        return [row[0] for row in rows]

    async def count(self) -> int:
        """The rows not past their expiry by the database's clock: one ``count(*)``.

        PostgreSQL counts by visiting every live row (or its entry in the ``expires_at`` index), so the
        time grows with the number of sessions; it holds one connection of the pool and takes no lock
        that blocks writers. For a very large table raise ``command_timeout`` and ``SESSION_STORE_TIMEOUT``.
        """
        pool = await self._ready_pool()
        with self.translating("count"):
            return int(await pool.fetchval(self._sql.count))

    async def cleanup(self) -> int:
        """Delete expired rows, and rows no release can read, in batches of ``cleanup_batch``; return how many.

        Rows another worker is deleting at the same moment are skipped (``SKIP LOCKED``), so the
        cleanup tasks of several workers never wait for each other.
        """
        pool = await self._ready_pool()
        total = 0
        with self.translating("cleanup"):
            for statement in (self._sql.cleanup, self._sql.cleanup_unreadable):
                while True:
                    status = await pool.execute(statement, self.cleanup_batch)
                    deleted = int(status.split()[-1])
                    total += deleted
                    if deleted < self.cleanup_batch:
                        break
        return total


def _server_name(dsn: str) -> str:
    """Host, port and database of a DSN, without the user or password, for messages."""
    config = StoreUrl(dsn, "PostgresStore")
    return f"{config.hosts_text}{config.path}" or "localhost"
