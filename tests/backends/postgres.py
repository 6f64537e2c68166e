"""The PostgreSQL store, for the contract and HTTP suites: a table of its own per test."""

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest

from fastapi_sessions.stores.postgres import PostgresStore
from tests.support import Backend, port_open, unavailable

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


@pytest.fixture
def backend_postgres() -> Iterator[Backend]:
    if not port_open(HOST, PORT):
        unavailable(f"PostgreSQL is not reachable at {HOST}:{PORT}")
    table = new_table()
    url = f"{DSN}?table={table}&cleanup_interval=0"
    yield Backend("postgres", lambda: PostgresStore.from_url(url), url=url, extra={"table": table, "dsn": DSN})
    run_sql(f'DROP TABLE IF EXISTS "{table}"')
