"""`MongoStore`: sessions in a MongoDB collection, one document per session.

A document looks like ``{_id: key, d: {field: value, ...}, u: user_id | null, v: version, f: format, exp: date}``,
and a session of a user also has ``g``, the user's revocation generation it was issued under. A user whose
sessions were all revoked once has a document ``{_id: {revoked: user_id}, g: generation}``, which never expires.
MongoDB removes expired documents itself through a TTL index on ``exp``, but its TTL monitor runs only
once a minute, so every read also filters on ``exp`` and a document past its expiry is never returned.
"""

import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

from fastapi_sessions.exceptions import SessionConfigError, StoreError, StoreUnavailableError
from fastapi_sessions.stores._records import FORMAT_VERSION, decode_record, readable
from fastapi_sessions.stores._url import Bool, StoreUrl, Text
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult, missing_driver

try:
    from pymongo import ASCENDING, AsyncMongoClient, MongoClient, ReturnDocument
    from pymongo.collection import Collection as SyncCollection
    from pymongo.database import Database as SyncDatabase
    from pymongo.errors import (
        ConfigurationError,
        ConnectionFailure,
        ExecutionTimeout,
        InvalidName,
        OperationFailure,
        PyMongoError,
        WTimeoutError,
    )
except ImportError as exc:  # pragma: no cover - exercised by a test that hides pymongo
    raise missing_driver("mongodb", "pymongo") from exc

__all__ = ["MongoStore"]

DEFAULT_DATABASE = "fastapi_sessions"
DEFAULT_COLLECTION = "sessions"

# Without these a dead server holds each request for pymongo's defaults (30 s to select a server, 20 s
# to connect), far past SESSION_STORE_TIMEOUT. Server selection gives up just under the default 2 s store
# timeout, so the driver's own diagnosis ("connection refused") is what gets logged. A URL that names
# an option keeps its own value.
_DEFAULT_TIMEOUTS_MS = {"serverSelectionTimeoutMS": 1500, "connectTimeoutMS": 2000, "socketTimeoutMS": 2000}
_OPTIONS = {"collection": Text(), "create_indexes": Bool()}

_PROJECTION = {"d": 1, "u": 1, "v": 1, "f": 1}
# A document this release may write to: fields in an object, a numeric version, its format (or none).
_WRITABLE = {"d": {"$type": "object"}, "v": {"$type": "number"}, "f": {"$in": [None, FORMAT_VERSION]}}


class MongoStore(SessionStore):
    """Sessions in a MongoDB collection, expired by a TTL index.

    Build it from a URL with `from_url`, or hand it a client, database or collection you already
    have: pymongo's ``AsyncMongoClient`` (and its ``AsyncDatabase`` / ``AsyncCollection``), or Motor's
    ``AsyncIOMotorClient`` and friends. A client the store did not create is never closed by it.

    Args:
        target: A client, a database or a collection.
        database: With a client: the database to use (default ``fastapi_sessions``).
        collection: With a client or database: the collection to use (default ``sessions``).
        create_indexes: Create the TTL index on ``exp`` and the index on ``u`` when the store opens.
            Turn off when the application's database user may not create indexes and they were
            created beforehand.
        clock: Returns the current time in seconds; expiry dates are computed and compared with it.

    Raises:
        TypeError: ``target`` is not an asynchronous MongoDB client, database or collection.
        SessionConfigError: a database or collection name is invalid.
    """

    # ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError and ServerSelectionTimeoutError.
    # A ConfigurationError during an operation is a failed DNS lookup of a mongodb+srv:// host.
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        ConnectionFailure,
        ExecutionTimeout,
        WTimeoutError,
        ConfigurationError,
    )

    def __init__(
        self,
        target: Any,
        *,
        database: str | None = None,
        collection: str | None = None,
        create_indexes: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._indexes_ready = not create_indexes
        self._make_client: Callable[[], Any] | None = None  # set by from_url: the store owns that client
        self._owned_client: Any = None
        self._names = (database, collection)
        self._collection: Any = _collection_of(target, database, collection)
        self._hosts: str | None = None  # from the URL; otherwise asked of the client when needed

    @classmethod
    def from_url(cls, url: str) -> "MongoStore":
        """Build from ``mongodb://[user:password@]host[:port][,host...]/[database][?options]``.

        ``mongodb+srv://`` works too. The database comes from the path (default ``fastapi_sessions``).
        Besides the driver's own options, the query may hold ``collection=`` (default ``sessions``) and
        ``create_indexes=false``; these are removed before the URI reaches ``AsyncMongoClient``.
        ``serverSelectionTimeoutMS`` defaults to 1500, ``connectTimeoutMS`` and ``socketTimeoutMS`` to 2000
        (``socketTimeoutMS`` to none when the URL sets ``timeoutMS``).

        Raises:
            SessionConfigError: the URL is malformed, or an option is unknown or has a bad value.
        """
        config = StoreUrl(url, "MongoStore")
        if not config.hosts_text:
            raise config.error("no MongoDB host, e.g. mongodb://localhost:27017/app")
        if config.scheme == "mongodb":
            config.hosts(27017)  # checks each host and port
        options, kept = config.options(_OPTIONS, driver_takes=lambda name: True, fold_case=True)
        collection = options.get("collection", DEFAULT_COLLECTION)
        create_indexes = options.get("create_indexes", True)
        database = unquote(config.path.lstrip("/")) or DEFAULT_DATABASE
        given = {item.partition("=")[0].lower() for item in kept}
        if "timeoutms" in given:
            given.add("sockettimeoutms")  # timeoutMS bounds each whole operation: no shorter reply timeout
        timeouts: dict[str, Any] = {name: ms for name, ms in _DEFAULT_TIMEOUTS_MS.items() if name.lower() not in given}
        query = "?" + "&".join(kept) if kept else ""
        uri = f"{config.scheme}://{config.userinfo()}{config.hosts_text}{config.path}{query}"

        def make_client() -> Any:
            return AsyncMongoClient(uri, **timeouts)

        try:
            with warnings.catch_warnings():
                # pymongo only warns about an unknown option or a bad value, then ignores it.
                warnings.simplefilter("error", UserWarning)
                client = make_client()
            store = cls(client, database=database, collection=collection, create_indexes=create_indexes)
        except (PyMongoError, UserWarning, ValueError, TypeError) as exc:
            raise config.error(str(exc)) from None
        store._make_client = make_client
        store._owned_client = client
        store._hosts = config.hosts_text
        return store

    @property
    def collection(self) -> Any:
        """The collection sessions are kept in."""
        if self._make_client is not None and self._owned_client is None:
            # A store built by from_url and closed: an AsyncMongoClient cannot be reused after close
            # (nor from another event loop), so reopening means a new client.
            self._owned_client = self._make_client()
            self._collection = _collection_of(self._owned_client, *self._names)
        return self._collection

    async def open(self) -> None:
        """Create the indexes (unless ``create_indexes`` is off).

        An unreachable server does not stop the application from starting: the failure is logged and
        the indexes are created by the first operation that reaches the server.
        """
        if self._indexes_ready:
            return
        try:
            await self._ensure_indexes()
        except StoreUnavailableError as exc:
            self.warn_unavailable_at_open(exc)  # the indexes are created by the first operation that reaches it

    async def close(self) -> None:
        """Close the client if the store created it (`from_url`); a client passed in is left open."""
        client, self._owned_client = self._owned_client, None
        if client is not None:
            await client.close()

    async def _ensure_indexes(self, before: str = "") -> None:
        collection = self.collection
        with self.translating(f"creating indexes{before}"):
            try:
                # expireAfterSeconds=0: each document expires at the date in its own exp field.
                await collection.create_index([("exp", ASCENDING)], expireAfterSeconds=0)
                await collection.create_index([("u", ASCENDING)])
            except OperationFailure as exc:
                if self.is_unavailable(exc):
                    raise
                # An index of the same name with other options, or a user without the createIndex right.
                raise SessionConfigError(
                    f"MongoStore could not create its indexes on {collection.full_name} (exp with "
                    f"expireAfterSeconds=0, and u): {exc}. Drop the conflicting index or use another collection; "
                    "or create the indexes beforehand and pass create_indexes=False (create_indexes=false in the URL)"
                ) from None
        self._indexes_ready = True

    async def _ready(self, operation: str) -> Any:
        if not self._indexes_ready:
            await self._ensure_indexes(f" before {operation}")
        return self.collection

    def is_unavailable(self, exc: BaseException) -> bool:
        # A server-side time limit is an OperationFailure whose code says so.
        return super().is_unavailable(exc) or (isinstance(exc, PyMongoError) and bool(getattr(exc, "timeout", False)))

    def describe_error(self, exc: BaseException) -> str:
        # pymongo appends the whole topology, with every server's state: the first part says it all.
        return super().describe_error(exc).split(", Topology Description:")[0]

    def _decode(self, operation: str, document: Mapping[str, Any]) -> StoredSession:
        return decode_record(
            self,
            operation,
            data=document.get("d"),
            version=document.get("v"),
            user_id=document.get("u"),
            format_version=document.get("f"),
        )

    @property
    def location(self) -> str:
        collection = self._collection
        hosts = self._hosts
        if hosts is None:
            try:
                addresses = collection.database.client.topology_description.server_descriptions()
                hosts = ",".join(f"{host}:{port}" for host, port in addresses)
            except Exception:  # a client without pymongo's topology (a test double): the names suffice
                hosts = None
        return f"MongoDB{f' {hosts}' if hosts else ''} (collection {collection.full_name})"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    @staticmethod
    def _expiry(now: datetime, ttl: float) -> datetime:
        # BSON dates hold milliseconds: round up, so a record never expires before its time to live.
        exp = now + timedelta(seconds=ttl)
        return exp + timedelta(microseconds=-exp.microsecond % 1000)

    async def load(self, key: str) -> StoredSession | None:
        collection = await self._ready("load")
        with self.translating("load"):
            document = await collection.find_one({"_id": key, "exp": {"$gt": self._now()}}, _PROJECTION)
        return None if document is None else self._decode("load", document)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        if not keys:
            return []
        collection = await self._ready("load_many")
        found: dict[str, StoredSession | None] = {}
        with self.translating("load_many"):
            async for document in collection.find(
                {"_id": {"$in": list(keys)}, "exp": {"$gt": self._now()}}, _PROJECTION
            ):
                found[document["_id"]] = readable(lambda document: self._decode("load_many", document), document)
        return [found.get(key) for key in keys]

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        for name in data:
            _check_field(name)
        collection = await self._ready("create")
        with self.translating("create"):
            generation = None if user_id is None else await self._generation(collection, user_id)
            await self._write(collection, key, data, ttl=ttl, user_id=user_id, generation=generation)

    async def _write(
        self,
        collection: Any,
        key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        generation: int | None,
    ) -> None:
        document = {
            "_id": key,
            "d": dict(data),
            "u": user_id,
            "v": 1,
            "f": FORMAT_VERSION,
            "exp": self._expiry(self._now(), ttl),
        }
        if generation is not None:
            document["g"] = generation
        await collection.replace_one({"_id": key}, document, upsert=True)

    @staticmethod
    async def _generation(collection: Any, user_id: str) -> int:
        """How many times all of ``user_id``'s sessions were revoked (see `delete_user_sessions`)."""
        document = await collection.find_one({"_id": _revoked_id(user_id)}, {"g": 1})
        return _generation_of(document)

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
        """Move a session to a new key: MongoDB cannot change a document's ``_id``, so delete, then insert.

        Then, against a concurrent `delete_user_sessions`, check that the user's revocation
        generation is still the one the session was issued under (see there).
        """
        for name in data:
            _check_field(name)
        collection = await self._ready("replace")
        with self.translating("replace"):
            old = await collection.find_one_and_delete({"_id": old_key, "exp": {"$gt": self._now()}}, {"g": 1})
            if old is None:
                await collection.delete_one({"_id": old_key})  # an expired leftover
                return False
            if user_id is None:
                await self._write(collection, new_key, data, ttl=ttl, user_id=None, generation=None)
                return True
            if user_id == old_user_id:
                generation = _generation_of(old)
            else:
                generation = await self._generation(collection, user_id)
            await self._write(collection, new_key, data, ttl=ttl, user_id=user_id, generation=generation)
            if await self._generation(collection, user_id) > generation:
                await collection.delete_one({"_id": new_key})
                return False
        return True

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        unset = {f"d.{_check_field(name)}": "" for name in removed}
        set_ = {f"d.{_check_field(name)}": value for name, value in changes.items() if name not in removed}
        now = self._now()
        set_["exp"] = self._expiry(now, ttl)
        operations: dict[str, Any] = {"$set": set_, "$inc": {"v": 1}}
        if unset:
            operations["$unset"] = unset
        live = {"_id": key, "exp": {"$gt": now}, **_WRITABLE}
        query = live if expected_version is None else {**live, "v": expected_version}
        collection = await self._ready("update")
        with self.translating("update"):
            result = await collection.update_one(query, operations)
            if result.matched_count:
                return UpdateResult.UPDATED
            if expected_version is None:
                return UpdateResult.MISSING
            # Only here is a second query needed: was the record gone, or at another version?
            exists = await collection.find_one(live, {"_id": 1})
        return UpdateResult.MISSING if exists is None else UpdateResult.CONFLICT

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        collection = await self._ready("delete")
        now = self._now()
        with self.translating("delete"):
            result = await collection.delete_one({"_id": key, "exp": {"$gt": now}})
            if result.deleted_count:
                return True
            # An expired record the TTL monitor has not removed yet goes too (or one whose expiry is no
            # date), but it was not live.
            await collection.delete_one({"_id": key})
        return False

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete every session of ``user_id`` but ``keep``; how many were live.

        MongoDB makes each document's write atomic, not a ``delete_many``, and a regeneration is a
        delete and an insert (`replace`), whose insert a running ``delete_many`` may not see. So
        the store first advances the user's revocation generation, then deletes. A regeneration
        that finished before the generation moved inserted its new document before the
        ``delete_many`` began, which deletes it; one that finishes after finds the generation past
        the one its session was issued under and deletes its new document itself, before it
        returns and the client can present the new ID.
        """
        _check_user(user_id)
        collection = await self._ready("delete_user_sessions")
        with self.translating("delete_user_sessions"):
            counter = await collection.find_one_and_update(
                {"_id": _revoked_id(user_id)}, {"$inc": {"g": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            query: dict[str, Any] = {"u": {"$eq": user_id}}
            if keep is not None:
                await collection.update_one({"_id": keep, **query}, {"$set": {"g": _generation_of(counter)}})
                query["_id"] = {"$ne": keep}
            result = await collection.delete_many({**query, "exp": {"$gt": self._now()}})
            await collection.delete_many(query)  # expired ones the TTL monitor has not removed yet
        return int(result.deleted_count)

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        _check_user(user_id)
        collection = await self._ready("delete_user_session")
        query = {"_id": key, "u": {"$eq": user_id}}
        with self.translating("delete_user_session"):
            result = await collection.delete_one({**query, "exp": {"$gt": self._now()}})
            if result.deleted_count:
                return True
            await collection.delete_one(query)  # an expired leftover
        return False

    async def user_keys(self, user_id: str) -> list[str]:
        _check_user(user_id)
        collection = await self._ready("user_keys")
        # $eq: the user ID is compared as a value, whatever it holds, and never read as an operator.
        query = {"u": {"$eq": user_id}, "exp": {"$gt": self._now()}}
        with self.translating("user_keys"):
            return [document["_id"] async for document in collection.find(query, {"_id": 1})]

    async def count(self) -> int:
        """The sessions not past their expiry: one ``count_documents`` over the TTL index on ``exp``.

        It reads an index entry per live session. The documents counting a user's revocations have no
        expiry and are not counted.
        """
        collection = await self._ready("count")
        with self.translating("count"):
            return int(await collection.count_documents({"exp": {"$gt": self._now()}}))

    async def cleanup(self) -> int:
        """Delete expired documents now. MongoDB's TTL monitor does the same about once a minute."""
        collection = await self._ready("cleanup")
        with self.translating("cleanup"):
            result = await collection.delete_many({"exp": {"$lte": self._now()}})
        return int(result.deleted_count)


def _collection_of(target: Any, database: str | None, collection: str | None) -> Any:
    """The collection that ``target`` (a client, database or collection) and the names point to."""
    if isinstance(target, MongoClient | SyncDatabase | SyncCollection):
        raise TypeError(
            "MongoStore needs an asynchronous client: use pymongo.AsyncMongoClient instead of pymongo.MongoClient"
        )
    # Looked up on the type: database and client objects answer any attribute with a collection or database.
    kind = type(target)
    try:
        if callable(getattr(kind, "find_one_and_update", None)):
            if database is not None or collection is not None:
                raise TypeError("MongoStore was given a collection: database= and collection= do not apply")
            return target
        if callable(getattr(kind, "get_collection", None)):
            if database is not None:
                raise TypeError("MongoStore was given a database: database= does not apply")
            return target.get_collection(DEFAULT_COLLECTION if collection is None else collection)
        if callable(getattr(kind, "get_database", None)):
            database = DEFAULT_DATABASE if database is None else database
            return target.get_database(database).get_collection(
                DEFAULT_COLLECTION if collection is None else collection
            )
    except InvalidName as exc:
        raise SessionConfigError(f"MongoStore: {exc}") from None
    raise TypeError(
        "MongoStore needs a MongoDB client, database or collection (pymongo's AsyncMongoClient or "
        f"Motor's AsyncIOMotorClient), got {target!r}"
    )


def _revoked_id(user_id: str) -> dict[str, str]:
    # A document as _id: no session key (a string) can be it.
    return {"revoked": user_id}


def _generation_of(document: Mapping[str, Any] | None) -> int:
    """The generation a session or counter document holds; 0 for none (a session written before generations)."""
    value = None if document is None else document.get("g")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_user(user_id: str) -> None:
    # Refused rather than sent: a dict would be read as a query operator.
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be a string, got {type(user_id).__name__}")


def _check_field(name: str) -> str:
    """Return ``name``, which becomes part of an update path, or refuse it."""
    if not name or "." in name or "$" in name or "\x00" in name:
        raise StoreError(
            f"MongoStore cannot store a session field named {name!r}: a field name must not be empty or "
            "contain '.', '$' or NUL, since it becomes part of a MongoDB update path; rename the field"
        )
    return name
