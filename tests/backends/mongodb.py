"""MongoDB, for the contract and HTTP suites: mongomock-motor in process, and a real server when there is one.

No MongoDB server can be installed on the CI machines, so ``mongodb-fake`` (mongomock-motor) is what
CI runs. ``mongodb`` runs the same suites against the server at ``MONGODB_URL`` and is skipped when
that variable is unset.
"""

import gc
import os
import uuid
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from fastapi_sessions import SessionStore
from tests.support import Backend, unavailable

BACKENDS = ["mongodb-fake", "mongodb"]


def unique_name() -> str:
    return f"fs_test_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def backend_mongodb_fake() -> Backend:
    from mongomock_motor import AsyncMongoMockClient

    from fastapi_sessions.stores.mongodb import MongoStore

    def make_store() -> SessionStore:
        return MongoStore(AsyncMongoMockClient(), database=unique_name())

    return Backend("mongodb-fake", make_store)


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
        yield Backend("mongodb", lambda: MongoStore.from_url(store_url), url=store_url, extra={"database": database})
        admin.drop_database(database)
    finally:
        admin.close()
        # Closing an AsyncMongoClient can leave the socket of a cancelled server check unclosed
        # (pymongo 4.20); finalize it here, quietly, rather than in whichever test the collector picks.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
