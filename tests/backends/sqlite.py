"""The SQLite store, for the contract and HTTP suites: a database file of its own per test."""

import sqlite3
from pathlib import Path

import pytest

from fastapi_sessions import SessionStore
from fastapi_sessions.stores.sqlite import SQLiteStore
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions, unknown
from tests.support import Backend

BACKENDS = ["sqlite"]


def run_sql(store: SessionStore, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run one statement on a connection of its own to the store's file, as another process would."""
    assert isinstance(store, SQLiteStore)
    with sqlite3.connect(store.path) as db:
        rows: list[tuple[object, ...]] = db.execute(sql.format(table=f'"{store.table}"'), args).fetchall()
    db.close()
    return rows


async def age(store: SessionStore, key: str, seconds: float) -> None:
    run_sql(store, "UPDATE {table} SET expires_at = expires_at - ? WHERE key = ?", seconds, key)


async def dump(store: SessionStore) -> str:
    return repr(run_sql(store, "SELECT key, data, user_id FROM {table}"))


# Each a SET clause, for the row of one key.
CORRUPTIONS = {
    "not-json": """data = '{"secret": "s3cr3t"'""",
    "an-array": """data = '["s3cr3t"]'""",
    "json-null": "data = 'null'",
    "not-utf8": "data = CAST(X'7B2273336372337422FF7D' AS TEXT)",
    "a-blob": "data = X'7B7D'",
    "version-not-integer": "version = 's3cr3t'",
    "user-a-blob": "user_id = X'FF'",
    "format-not-integer": "format = 's3cr3t'",
    FUTURE: f"format = {FUTURE_VERSION}",
}


async def corrupt(store: SessionStore, key: str, how: str) -> None:
    if how not in CORRUPTIONS:
        raise unknown(how)
    assert isinstance(store, SQLiteStore)
    with sqlite3.connect(store.path) as db:
        db.execute(f'UPDATE "{store.table}" SET {CORRUPTIONS[how]} WHERE key = ?', (key,))
    db.close()


async def strip_format(store: SessionStore, key: str) -> None:
    run_sql(store, "UPDATE {table} SET format = NULL WHERE key = ?", key)


@pytest.fixture
def backend_sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "sessions.db"
    url = f"sqlite:///{path}?cleanup_interval=0"
    return Backend(
        "sqlite",
        lambda: SQLiteStore.from_url(url),
        url=url,
        extra={
            "path": path,
            "corruptions": Corruptions(
                corrupt, tuple(how for how in CORRUPTIONS if how != FUTURE), strip_format, cleanup_removes=True
            ),
        },
        age=age,
        dump=dump,
        from_url=SQLiteStore.from_url,
        bad_urls={
            "sqlite://host/s.db": "three slashes",
            "sqlite://": "three slashes",
            "sqlite:///": "the database file is missing",
            "sqlite:///s.db?timeout=3": "unknown option 'timeout'; the options are busy_timeout, cleanup_batch",
            "sqlite:///s.db?busy_timeout=soon": "busy_timeout must be a number of at least 0, got 'soon'",
            "sqlite:///s.db?cleanup_batch=0": "cleanup_batch must be an integer of at least 1, got '0'",
            "sqlite:///s.db?table=a;b": "is not a valid name",
        },
    )
