"""`SQLiteStore`: sessions in a SQLite file. Persistent, embedded, no server; one machine."""

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote

from fastapi_sessions.exceptions import CorruptRecordError, SessionConfigError, StoreUnavailableError
from fastapi_sessions.stores._records import FORMAT_VERSION, decode_record, readable
from fastapi_sessions.stores._url import Float, Int, StoreUrl, Text
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult

try:
    import sqlite3
except ImportError:  # pragma: no cover - a Python built without SQLite
    raise ImportError("SQLiteStore needs Python's sqlite3 module, which this Python was built without") from None

__all__ = ["SQLiteStore"]

logger = logging.getLogger("fastapi_sessions")

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_OPTIONS = {"table": Text(), "busy_timeout": Float(), "cleanup_interval": Float(), "cleanup_batch": Int(minimum=1)}
# Bound parameters per statement: SQLite before 3.32 allows 999.
_CHUNK = 500


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class _NotUtf8(bytes):
    """A TEXT value that is not UTF-8: kept as it is, so the record it belongs to reads as corrupt."""


def _text(value: bytes) -> str | bytes:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return _NotUtf8(value)


# What no release can read: text that is no JSON object, a version or expiry that is no number, a user ID
# that is no text (a NULL format is the release before format versions; a newer one's is left alone).
_UNREADABLE = (
    "CASE WHEN typeof(data) = 'text' AND json_valid(data) THEN json_type(data) <> 'object' ELSE 1 END "
    "OR typeof(version) <> 'integer' OR typeof(expires_at) NOT IN ('real', 'integer') "
    "OR typeof(user_id) NOT IN ('text', 'null') OR typeof(format) NOT IN ('integer', 'null')"
)


class SQLiteStore(SessionStore):
    """Sessions in a table of a SQLite database file, which survives restarts.

    For a single server: several worker processes may share the file (WAL mode lets readers run
    while one writer writes, and a busy timeout makes writers wait their turn), but the file must be
    on a local disk of that machine, never on a network share.

    Each store runs its queries on one connection in a thread of its own, so the event loop never
    waits on the disk. Expiry times are Unix times by the app's clock; every read ignores expired
    rows, and a background task deletes them.

    Args:
        path: The database file (created if missing), or ``:memory:`` for a private database that
            lives as long as the store is open.
        table: The table name. Created on `open`.
        busy_timeout: Seconds a write waits for another process's write lock before failing. Keep
            it below ``SESSION_STORE_TIMEOUT``: the store's thread waits that long, and the other
            operations of this process queue behind it.
        cleanup_interval: Seconds between deletions of expired rows by the background task; ``0``
            disables the task.
        cleanup_batch: Rows deleted per transaction by `cleanup`, so a long cleanup never holds the
            write lock for long.
        clock: Returns the current time in seconds; tests inject their own.

    Raises:
        SessionConfigError: the table name or an option is invalid.
    """

    # "database is locked" (busy timeout), "disk I/O error", "unable to open database file"...
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.OperationalError,)
    failure_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "fastapi_sessions",
        busy_timeout: float = 1.0,
        cleanup_interval: float = 300.0,
        cleanup_batch: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise SessionConfigError(
                f"SQLiteStore table {table!r} is not a valid name: use letters, digits and underscores "
                "(at most 63, not starting with a digit)"
            )
        if busy_timeout < 0 or cleanup_interval < 0 or cleanup_batch < 1:
            raise SessionConfigError(
                "SQLiteStore busy_timeout and cleanup_interval must be >= 0 and cleanup_batch >= 1"
            )
        self.path = os.fspath(path)
        self.table = table
        self.busy_timeout = busy_timeout
        self.cleanup_interval = cleanup_interval
        self.cleanup_batch = cleanup_batch
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

        quoted = f'"{table}"'
        self._ddl = (
            f"CREATE TABLE IF NOT EXISTS {quoted} (key TEXT PRIMARY KEY, data TEXT NOT NULL, user_id TEXT, "
            "version INTEGER NOT NULL, expires_at REAL NOT NULL, format INTEGER)",
            f'CREATE INDEX IF NOT EXISTS "{table}_expires_at_idx" ON {quoted} (expires_at)',
            f'CREATE INDEX IF NOT EXISTS "{table}_user_id_idx" ON {quoted} (user_id) WHERE user_id IS NOT NULL',
        )
        self._sql_columns = f"SELECT name FROM pragma_table_info('{table}')"
        self._sql_add_format = f"ALTER TABLE {quoted} ADD COLUMN format INTEGER"  # a table of the previous release
        self._sql_load = f"SELECT data, version, user_id, format FROM {quoted} WHERE key = ? AND expires_at > ?"
        self._sql_load_many = (
            f"SELECT key, data, version, user_id, format FROM {quoted} WHERE expires_at > ? AND key IN "
        )
        self._sql_create = (
            f"INSERT OR REPLACE INTO {quoted} (key, data, user_id, version, expires_at, format) "
            f"VALUES (?, ?, ?, 1, ?, {FORMAT_VERSION})"
        )
        self._sql_update = f"UPDATE {quoted} SET data = ?, version = ?, expires_at = ? WHERE key = ?"
        self._sql_delete_live = f"DELETE FROM {quoted} WHERE key = ? AND expires_at > ?"
        self._sql_delete = f"DELETE FROM {quoted} WHERE key = ?"
        self._sql_user_keys = f"SELECT key FROM {quoted} WHERE user_id = ? AND expires_at > ?"
        self._sql_count = f"SELECT count(*) FROM {quoted} WHERE expires_at > ?"
        self._sql_delete_user = f"DELETE FROM {quoted} WHERE user_id = ? AND key IS NOT ? AND expires_at > ?"
        self._sql_delete_user_leftovers = f"DELETE FROM {quoted} WHERE user_id = ? AND key IS NOT ?"
        self._sql_delete_owned_live = f"DELETE FROM {quoted} WHERE key = ? AND user_id = ? AND expires_at > ?"
        self._sql_delete_owned = f"DELETE FROM {quoted} WHERE key = ? AND user_id = ?"
        self._sql_cleanup = (
            f"DELETE FROM {quoted} WHERE key IN (SELECT key FROM {quoted} WHERE expires_at <= ? LIMIT ?)"
        )
        self._sql_cleanup_unreadable = (
            f"DELETE FROM {quoted} WHERE rowid IN (SELECT rowid FROM {quoted} WHERE {_UNREADABLE} LIMIT ?)"
        )

    @classmethod
    def from_url(cls, url: str) -> "SQLiteStore":
        """Build from ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

        Options go in the query string: ``table``, ``busy_timeout``, ``cleanup_interval``,
        ``cleanup_batch``, e.g. ``sqlite:///sessions.db?busy_timeout=1.5``.
        """
        config = StoreUrl(url, "SQLiteStore")
        if config.hosts_text or not config.path.startswith("/"):
            raise config.error(
                "a SQLite URL has three slashes and a path, sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        path = unquote(config.path[1:])
        if not path:
            raise config.error("the database file is missing after sqlite:///")
        options, _ = config.options(_OPTIONS)
        with config.building():
            return cls(path, **options)

    @property
    def location(self) -> str:
        return f"SQLite {self.path} (table {self.table})"

    # Lifecycle.

    async def open(self) -> None:
        """Open the database (WAL mode), create the table, and start the cleanup task."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="fastapi_sessions-sqlite")
            try:
                await self._run("open", self._connect)
            except BaseException:
                self._executor.shutdown(wait=False)
                self._executor = None
                raise
        self.start_cleanup(self.cleanup_interval)

    async def close(self) -> None:
        """Stop the cleanup task and close the database."""
        await self.stop_cleanup()
        executor, self._executor = self._executor, None
        if executor is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            finally:
                executor.shutdown(wait=False)

    def _connect(self) -> None:
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # Readers never block the writer nor each other; NORMAL sync is durable up to the last
            # transactions before a power cut, never corrupt.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.text_factory = _text
            with _transaction(connection):
                for statement in self._ddl:
                    connection.execute(statement)
                if "format" not in {row[0] for row in connection.execute(self._sql_columns)}:
                    connection.execute(self._sql_add_format)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def _run(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` on the store's thread; SQLite's failures become store errors."""
        if self._executor is None:
            await self.open()
        assert self._executor is not None
        with self.translating(operation):
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreUnavailableError(f"SQLiteStore: {self.location} is closed")
        return self._connection

    # The store interface. Each operation is one function run on the store's thread.

    async def load(self, key: str) -> StoredSession | None:
        return await self._run("load", self._load, key, self._clock())

    def _load(self, key: str, now: float) -> StoredSession | None:
        row = self._db().execute(self._sql_load, (key, now)).fetchone()
        return None if row is None else self._decode("load", row)

    def _decode(self, operation: str, row: Sequence[Any]) -> StoredSession:
        """The session in a row of ``data, version, user_id, format``."""
        data, version, user_id, format_version = row
        if not isinstance(data, str):  # not UTF-8, or a BLOB
            data = None
        return decode_record(
            self,
            operation,
            data=data,
            version=version,
            user_id=user_id,
            format_version=format_version,
            parse=json.loads,
        )

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        if not keys:
            return []
        return await self._run("load_many", self._load_many, list(keys), self._clock())

    def _load_many(self, keys: list[str], now: float) -> list[StoredSession | None]:
        db = self._db()
        found: dict[str, StoredSession | None] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            query = self._sql_load_many + f"({', '.join('?' * len(chunk))})"
            for key, *row in db.execute(query, (now, *chunk)):
                found[key] = readable(lambda row: self._decode("load_many", row), row)
        return [found.get(key) for key in keys]

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        payload = _dumps(data)
        await self._run("create", self._create, key, payload, user_id, self._clock() + ttl)

    def _create(self, key: str, payload: str, user_id: str | None, expires_at: float) -> None:
        self._db().execute(self._sql_create, (key, payload, user_id, expires_at))

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        now = self._clock()
        return await self._run(
            "update", self._update, key, dict(changes), list(removed), now, now + ttl, expected_version
        )

    def _update(
        self,
        key: str,
        changes: dict[str, Any],
        removed: list[str],
        now: float,
        expires_at: float,
        expected_version: int | None,
    ) -> UpdateResult:
        db = self._db()
        # BEGIN IMMEDIATE takes the write lock before reading, so no other process changes the row
        # between this read and the write: the merge below cannot lose a concurrent update.
        with _transaction(db):
            row = db.execute(self._sql_load, (key, now)).fetchone()
            if row is None:
                return UpdateResult.MISSING
            try:
                stored = self._decode("update", row)
            except CorruptRecordError:
                return UpdateResult.MISSING  # no session: the request that loaded it started a new one
            if expected_version is not None and stored.version != expected_version:
                return UpdateResult.CONFLICT
            data = stored.data
            data.update(changes)
            for name in removed:
                data.pop(name, None)
            db.execute(self._sql_update, (_dumps(data), stored.version + 1, expires_at, key))
        return UpdateResult.UPDATED

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        return await self._run("delete", self._delete, key, self._clock())

    def _delete(self, key: str, now: float) -> bool:
        db = self._db()
        with _transaction(db):
            if db.execute(self._sql_delete_live, (key, now)).rowcount:
                return True
            db.execute(self._sql_delete, (key,))  # an expired leftover
        return False

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
        now = self._clock()
        payload = _dumps(data)
        return await self._run("replace", self._replace, old_key, new_key, payload, user_id, now, ttl)

    def _replace(self, old_key: str, new_key: str, payload: str, user_id: str | None, now: float, ttl: float) -> bool:
        db = self._db()
        with _transaction(db):
            if not db.execute(self._sql_delete_live, (old_key, now)).rowcount:
                return False
            db.execute(self._sql_create, (new_key, payload, user_id, now + ttl))
        return True

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        return await self._run("delete_user_sessions", self._delete_user_sessions, user_id, keep, self._clock())

    def _delete_user_sessions(self, user_id: str, keep: str | None, now: float) -> int:
        db = self._db()
        # One write transaction, and replace is one too: SQLite runs them one after the other, so
        # a session regenerated meanwhile is deleted under its new key.
        with _transaction(db):
            deleted = int(db.execute(self._sql_delete_user, (user_id, keep, now)).rowcount)
            db.execute(self._sql_delete_user_leftovers, (user_id, keep))  # expired ones
        return deleted

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        return await self._run("delete_user_session", self._delete_user_session, user_id, key, self._clock())

    def _delete_user_session(self, user_id: str, key: str, now: float) -> bool:
        db = self._db()
        with _transaction(db):
            if db.execute(self._sql_delete_owned_live, (key, user_id, now)).rowcount:
                return True
            db.execute(self._sql_delete_owned, (key, user_id))  # an expired leftover
        return False

    async def user_keys(self, user_id: str) -> list[str]:
        return await self._run("user_keys", self._user_keys, user_id, self._clock())

    def _user_keys(self, user_id: str, now: float) -> list[str]:
        return [row[0] for row in self._db().execute(self._sql_user_keys, (user_id, now))]

    async def count(self) -> int:
        """The rows not past their expiry: one ``count(*)`` over the ``expires_at`` index, taking no write lock.

        It reads one index entry per live session, on the store's thread: the store's other operations
        in this process wait behind it, other processes' do not.
        """
        return await self._run("count", self._count, self._clock())

    def _count(self, now: float) -> int:
        return int(self._db().execute(self._sql_count, (now,)).fetchone()[0])

    async def cleanup(self) -> int:
        """Delete expired rows, and rows no release can read, ``cleanup_batch`` per transaction; return how many.

        Finding the unreadable rows reads the whole table: at the default ``cleanup_interval`` of 5
        minutes, a few milliseconds per 10,000 sessions.
        """
        return await self._run("cleanup", self._cleanup, self._clock())

    def _cleanup(self, now: float) -> int:
        batch = self.cleanup_batch
        return self._delete_batches(self._sql_cleanup, (now, batch)) + self._delete_batches(
            self._sql_cleanup_unreadable, (batch,)
        )

    def _delete_batches(self, statement: str, args: tuple[Any, ...]) -> int:
        db = self._db()
        total = 0
        while True:
            with _transaction(db):
                deleted = db.execute(statement, args).rowcount
            total += deleted
            if deleted < self.cleanup_batch:
                return total


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: committed on exit, rolled back on an exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full, I/O)
            db.execute("ROLLBACK")
        raise
