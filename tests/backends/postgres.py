"""The PostgreSQL store, for the contract and HTTP suites: a table of its own per test."""

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest

from fastapi_sessions import SessionStore
from fastapi_sessions.stores.postgres import PostgresStore
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions, unknown
from tests.support import Backend, Driver, free_port, port_open, unavailable

BACKENDS = ["postgres"]

HOST = "127.0.0.1"
PORT = 5432
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"


def run_sql(query: str, *args: Any, dsn: str = DSN) -> list[asyncpg.Record]:
    """Run one query on a connection of its own, from synchronous code (fixtures, sync tests)."""

    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    # A thread of its own: the caller may be inside a running event loop.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, run()).result()


def new_table() -> str:
    return f"sessions_test_{uuid.uuid4().hex[:12]}"


def pool_of(store: SessionStore) -> "asyncpg.Pool[asyncpg.Record]":
    assert isinstance(store, PostgresStore) and store.pool is not None
    return store.pool


async def age(store: SessionStore, key: str, seconds: float) -> None:
    assert isinstance(store, PostgresStore)
    await pool_of(store).execute(
        f'UPDATE "{store.table}" SET expires_at = expires_at - make_interval(secs => $2) WHERE key = $1',
        key,
        float(seconds),
    )


async def dump(store: SessionStore) -> str:
    assert isinstance(store, PostgresStore)
    rows = await pool_of(store).fetch(f'SELECT key, data::text, user_id FROM "{store.table}"')
    return repr([tuple(row) for row in rows])


# Each the new jsonb of the row, from its current one.
CORRUPTIONS = {
    "an-array": """'["s3cr3t"]'::jsonb""",
    "a-string": """'"s3cr3t"'::jsonb""",
    "a-number": "'5'::jsonb",
    "json-null": "'null'::jsonb",
    "format-not-a-number": """data || '{":f": "s3cr3t"}'::jsonb""",
    FUTURE: f"""data || '{{":f": {FUTURE_VERSION}}}'::jsonb""",
}


async def corrupt(store: SessionStore, key: str, how: str) -> None:
    assert isinstance(store, PostgresStore)
    if how not in CORRUPTIONS:
        raise unknown(how)
    await pool_of(store).execute(f'UPDATE "{store.table}" SET data = {CORRUPTIONS[how]} WHERE key = $1', key)


async def strip_format(store: SessionStore, key: str) -> None:
    assert isinstance(store, PostgresStore)
    await pool_of(store).execute(f"""UPDATE "{store.table}" SET data = data - ':f' WHERE key = $1""", key)


@pytest.fixture
def backend_postgres() -> Iterator[Backend]:
    if not port_open(HOST, PORT):
        unavailable(f"PostgreSQL is not reachable at {HOST}:{PORT}")
    table = new_table()
    url = f"{DSN}?table={table}&cleanup_interval=0"
    yield Backend(
        "postgres",
        lambda: PostgresStore.from_url(url),
        url=url,
        extra={
            "table": table,
            "dsn": DSN,
            "corruptions": Corruptions(
                corrupt, tuple(how for how in CORRUPTIONS if how != FUTURE), strip_format, cleanup_removes=True
            ),
        },
        age=age,
        dump=dump,
        from_url=PostgresStore.from_url,
        unreachable_url=f"postgresql://postgres@{HOST}:{free_port()}/test?cleanup_interval=0&connect_timeout=1",
        bad_urls={
            "postgresql://h/db?min_size=many": "min_size must be an integer of at least 0, got 'many'",
            "postgresql://h/db?create_table=maybe": "create_table must be true or false",
            "postgresql://h/db?min_size=5&max_size=2": "min_size <= max_size",
            "postgresql://h/db?cleanup_interval=-1": "cleanup_interval must be a number of at least 0, got '-1'",
            "postgresql://h/db?table=a;b": "is not a valid name",
            "postgresql://h:port/db": "bad port 'port'",
            "mysql://h/db": "unknown scheme 'mysql' for PostgresStore; use one of postgresql://, postgres://",
        },
        driver=Driver(("asyncpg",), "postgres", "fastapi_sessions.stores.postgres"),
    )
    run_sql(f'DROP TABLE IF EXISTS "{table}"')
