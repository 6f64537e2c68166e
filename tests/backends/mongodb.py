"""MongoDB, for the contract and HTTP suites: mongomock-motor in process, and a real server when there is one.

No MongoDB server can be installed on the CI machines, so ``mongodb-fake`` (mongomock-motor) is what
CI runs. ``mongodb`` runs the same suites against the server at ``MONGODB_URL`` and is skipped when
that variable is unset.
"""

import gc
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from fastapi_sessions import SessionStore
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions, unknown
from tests.support import Backend, Driver, free_port, unavailable

BACKENDS = ["mongodb-fake", "mongodb"]

# mongomock applies TTL indexes by the real clock when it reads. The fake backend's store runs this far
# ahead, so a document its store calls expired stays in the collection, as in MongoDB until its monitor runs.
AHEAD = 1_000_000_000.0


def unique_name() -> str:
    return f"fs_test_{uuid.uuid4().hex[:16]}"


def collection_of(store: SessionStore) -> Any:
    from fastapi_sessions.stores.mongodb import MongoStore

    assert isinstance(store, MongoStore)
    return store.collection


async def age(store: SessionStore, key: str, seconds: float) -> None:
    collection = collection_of(store)
    document = await collection.find_one({"_id": key})
    if document is not None:
        await collection.update_one({"_id": key}, {"$set": {"exp": document["exp"] - timedelta(seconds=seconds)}})


async def dump(store: SessionStore) -> str:
    return repr([document async for document in collection_of(store).find({})])


# Each an update of the document.
CORRUPTIONS: dict[str, dict[str, Any]] = {
    "data-a-string": {"$set": {"d": "s3cr3t"}},
    "data-missing": {"$unset": {"d": ""}},
    "version-a-string": {"$set": {"v": "s3cr3t"}},
    "version-missing": {"$unset": {"v": ""}},
    "user-a-number": {"$set": {"u": 5}},
    "format-a-string": {"$set": {"f": "s3cr3t"}},
    FUTURE: {"$set": {"f": FUTURE_VERSION}},
}


async def corrupt(store: SessionStore, key: str, how: str) -> None:
    if how not in CORRUPTIONS:
        raise unknown(how)
    await collection_of(store).update_one({"_id": key}, CORRUPTIONS[how])


async def strip_format(store: SessionStore, key: str) -> None:
    await collection_of(store).update_one({"_id": key}, {"$unset": {"f": ""}})


CORRUPT = Corruptions(corrupt, tuple(how for how in CORRUPTIONS if how != FUTURE), strip_format)


def shared(**fields: Any) -> dict[str, Any]:
    """What both MongoDB backends declare."""
    from fastapi_sessions.stores.mongodb import MongoStore

    return {
        "age": age,
        "dump": dump,
        "from_url": MongoStore.from_url,
        "unreachable_url": f"mongodb://127.0.0.1:{free_port()}/app?serverSelectionTimeoutMS=300",
        "bad_urls": {
            "redis://localhost:6379/0": "unknown scheme 'redis' for MongoStore; use one of mongodb://, mongodb+srv://",
            "mongodb://": "no MongoDB host",
            "mongodb://user:topsecret@localhost:99999/app": "bad port '99999'",
            "mongodb://localhost/app?serverSelectionTimeoutMS=soon": "serverselectiontimeoutms",
            "mongodb://localhost/app?colection=s": "Unknown option",
            "mongodb://localhost/app.sessions": "database names",
            "mongodb://localhost/app?collection=": "collection names",
            "mongodb://localhost/app?collection=a$b": "collection names",
            "mongodb://localhost/app?create_indexes=maybe": "create_indexes must be true or false",
            "mongodb://[::1/app": "IPv6",
        },
        "driver": Driver(("pymongo",), "mongodb", "fastapi_sessions.stores.mongodb"),
        **fields,
    }


@pytest.fixture
def backend_mongodb_fake() -> Backend:
    from mongomock_motor import AsyncMongoMockClient

    from fastapi_sessions.stores.mongodb import MongoStore

    def make_store() -> SessionStore:
        return MongoStore(AsyncMongoMockClient(), database=unique_name(), clock=lambda: time.time() + AHEAD)

    return Backend("mongodb-fake", make_store, extra={"corruptions": CORRUPT}, **shared())


def url_with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database``, authenticating where the original path said."""
    parts = urlsplit(url)
    query = parts.query
    original = parts.path.strip("/")
    if original and "authsource=" not in query.lower():
        query = f"{query}&authSource={original}" if query else f"authSource={original}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, parts.fragment))


@pytest.fixture
def backend_mongodb() -> Iterator[Backend]:
    url = os.environ.get("MONGODB_URL")
    if not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server to test against (the mongodb-fake backend runs instead)")
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    from fastapi_sessions.stores.mongodb import MongoStore

    database = unique_name()
    store_url = url_with_database(url, database)
    admin: MongoClient[dict[str, object]] = MongoClient(store_url, serverSelectionTimeoutMS=2000)
    try:
        try:
            admin.admin.command("ping")
        except PyMongoError as exc:
            unavailable(f"MongoDB at MONGODB_URL is unreachable: {type(exc).__name__}")
        yield Backend(
            "mongodb",
            lambda: MongoStore.from_url(store_url),
            url=store_url,
            extra={"database": database, "corruptions": CORRUPT},
            **shared(),
        )
        admin.drop_database(database)
    finally:
        admin.close()
        # Closing an AsyncMongoClient can leave the socket of a cancelled server check unclosed
        # (pymongo 4.20); finalize it here, quietly, rather than in whichever test the collector picks.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
