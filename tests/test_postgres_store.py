"""What only the PostgreSQL store does: its table, database-clock expiry, cleanup, and outages over HTTP."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from fastapi_sessions import AuthSession, SessionConfigError, StoreError, UpdateResult, store_from_url
from fastapi_sessions.stores.postgres import PostgresStore
from tests.backends.postgres import DSN, new_table, run_sql
from tests.pg_server import PgServer
from tests.support import Backend, client, login_app, make_manager, set_cookies

TTL = 60.0
COOKIE = "__Host-session"


@pytest.fixture
def table(backend_postgres: Backend) -> str:
    """A table name no other test uses, dropped after the test."""
    name: str = backend_postgres.extra["table"]
    return name


@pytest.fixture
async def store(backend_postgres: Backend) -> AsyncIterator[PostgresStore]:
    made = backend_postgres.make_store()
    assert isinstance(made, PostgresStore)
    async with made:
        yield made


def insert_expired(table: str, count: int, *, user_id: str | None = None) -> None:
    run_sql(
        f'INSERT INTO "{table}" (key, data, user_id, version, expires_at) '
        "SELECT 'expired-' || i, '{\"a\": 1}'::jsonb, $2, 1, now() - interval '1 minute' "
        "FROM generate_series(1, $1) AS i",
        count,
        user_id,
    )


def row_count(table: str) -> int:
    count: int = run_sql(f'SELECT count(*) FROM "{table}"')[0][0]
    return count


# The table.


@pytest.mark.anyio
async def test_open_creates_the_table_and_indexes_even_when_workers_start_at_once(table: str) -> None:
    stores = [PostgresStore(dsn=DSN, table=table, cleanup_interval=0) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        columns = run_sql(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = $1 ORDER BY ordinal_position",
            table,
        )
        assert [tuple(row) for row in columns] == [
            ("key", "text", "NO"),
            ("data", "jsonb", "NO"),
            ("user_id", "text", "YES"),
            ("version", "bigint", "NO"),
            ("expires_at", "timestamp with time zone", "NO"),
        ]
        indexes = {
            row[0]: row[1] for row in run_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", table)
        }
        assert "(expires_at)" in indexes[f"{table}_expires_at_idx"]
        assert indexes[f"{table}_user_id_idx"].endswith("(user_id) WHERE (user_id IS NOT NULL)")
        assert len(indexes) == 3  # and the primary key
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    async with PostgresStore(dsn=DSN, table=table, cleanup_interval=0) as again:  # idempotent
        await again.create("k", {"a": 1}, ttl=TTL, user_id=None)
        assert await again.load("k") is not None


@pytest.mark.anyio
async def test_a_schema_qualified_table() -> None:
    schema = new_table()
    run_sql(f'CREATE SCHEMA "{schema}"')
    try:
        async with PostgresStore(dsn=DSN, table=f"{schema}.web", cleanup_interval=0) as store:
            await store.create("k", {"a": 1}, ttl=TTL, user_id="u")
            assert await store.user_keys("u") == ["k"]
        assert row_count(f'{schema}"."web') == 1
    finally:
        run_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.anyio
async def test_create_table_off_leaves_the_schema_to_migrations(table: str) -> None:
    async with PostgresStore(dsn=DSN, table=table, create_table=False, cleanup_interval=0) as store:
        with pytest.raises(StoreError) as raised:
            await store.load("k")
    assert str(raised.value) == (
        f"PostgresStore: load at PostgreSQL 127.0.0.1:5432/test (table {table}) failed: "
        f'UndefinedTableError: relation "{table}" does not exist'
    )
    assert row_count_of_tables(table) == 0


def row_count_of_tables(name: str) -> int:
    count: int = run_sql("SELECT count(*) FROM pg_tables WHERE tablename = $1", name)[0][0]
    return count


@pytest.fixture
def limited_dsn(table: str) -> Iterator[str]:
    """A role that may read and write the table but create nothing (PostgreSQL 15 grants no CREATE on public)."""
    role = new_table()
    run_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield f"postgresql://{role}@127.0.0.1:5432/test"
    finally:
        run_sql(f'DROP OWNED BY "{role}"')
        run_sql(f'DROP ROLE "{role}"')


@pytest.mark.anyio
async def test_a_user_without_create_rights_uses_the_existing_table(
    table: str, limited_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with PostgresStore(dsn=DSN, table=table, cleanup_interval=0):
        pass  # a migration made the table
    role = limited_dsn.split("//")[1].split("@")[0]
    run_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')
    async with PostgresStore(dsn=limited_dsn, table=table, cleanup_interval=0) as store:
        await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
        assert await store.load("k") is not None
    assert any("using the existing table" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_a_user_without_create_rights_and_no_table_is_told_what_to_do(table: str, limited_dsn: str) -> None:
    store = PostgresStore(dsn=limited_dsn, table=table, cleanup_interval=0)
    with pytest.raises(StoreError, match=f"cannot create table {table} .*permission denied for schema public"):
        await store.open()
    await store.close()


@pytest.mark.parametrize(
    "name", ["", "1abc", "a;b", 'a"b', "a b", "a-b", "a.b.c", ".a", "a.", "x" * 64, "ta\u0308ble", "t; DROP TABLE x"]
)
def test_bad_table_names_are_refused(name: str) -> None:
    with pytest.raises(SessionConfigError, match="is not a valid name"):
        PostgresStore(dsn=DSN, table=name)


@pytest.mark.anyio
async def test_a_long_table_name_gets_both_indexes() -> None:
    table = new_table().ljust(63, "x")
    try:
        async with PostgresStore(dsn=DSN, table=table, cleanup_interval=0) as store:
            await store.create("k", {"a": 1}, ttl=TTL, user_id="u")
        indexes = [row[0] for row in run_sql("SELECT indexdef FROM pg_indexes WHERE tablename = $1", table)]
        assert len(indexes) == 3
    finally:
        run_sql(f'DROP TABLE IF EXISTS "{table}"')


# Expiry by the database's clock.


@pytest.mark.anyio
async def test_expiry_is_set_by_the_database_clock(store: PostgresStore) -> None:
    await store.create("k", {"a": 1}, ttl=100, user_id=None)
    [[remaining]] = run_sql(f'SELECT extract(epoch FROM expires_at - now()) FROM "{store.table}"')
    assert 95 < remaining <= 100
    assert await store.update("k", {"a": 2}, ttl=5000) is UpdateResult.UPDATED
    [[remaining]] = run_sql(f'SELECT extract(epoch FROM expires_at - now()) FROM "{store.table}"')
    assert 4995 < remaining <= 5000


@pytest.mark.anyio
async def test_cleanup_deletes_expired_rows_in_batches(backend_postgres: Backend, table: str) -> None:
    async with PostgresStore(dsn=DSN, table=table, cleanup_interval=0, cleanup_batch=3) as store:
        await store.create("live1", {"a": 1}, ttl=TTL, user_id=None)
        await store.create("live2", {"a": 1}, ttl=TTL, user_id="u")
        insert_expired(table, 10)
        assert await store.cleanup() == 10  # four statements: 3 + 3 + 3 + 1
        assert row_count(table) == 2
        assert await store.cleanup() == 0


@pytest.mark.anyio
async def test_the_background_task_deletes_expired_rows(table: str) -> None:
    async with PostgresStore(dsn=DSN, table=table, cleanup_interval=0.05) as store:
        await store.create("live", {"a": 1}, ttl=TTL, user_id=None)
        insert_expired(table, 5)
        deadline = time.monotonic() + 5
        while row_count(table) > 1:
            assert time.monotonic() < deadline, "the cleanup task did not run"
            await asyncio.sleep(0.05)
        assert await store.load("live") is not None
    assert store._cleanup_task is None


@pytest.mark.anyio
async def test_an_update_is_one_statement_whatever_its_outcome(table: str) -> None:
    queries: list[str] = []

    def record(query: Any) -> None:
        if not query.query.startswith("SELECT pg_advisory_unlock_all()"):  # the pool's reset on release
            queries.append(query.query)

    async def log_queries(connection: Any) -> None:
        connection.add_query_logger(record)

    pool = await asyncpg.create_pool(DSN, min_size=1, max_size=1, init=log_queries)
    try:
        async with PostgresStore(pool, table=table, cleanup_interval=0) as store:
            await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
            queries.clear()
            assert await store.update("k", {"b": 2}, removed=["a"], ttl=TTL) is UpdateResult.UPDATED
            assert [query.split()[0] for query in queries] == ["UPDATE"]
            queries.clear()
            assert await store.update("k", {"b": 3}, ttl=TTL, expected_version=2) is UpdateResult.UPDATED
            assert await store.update("k", {"b": 4}, ttl=TTL, expected_version=2) is UpdateResult.CONFLICT
            assert await store.update("gone", {"b": 4}, ttl=TTL, expected_version=2) is UpdateResult.MISSING
            assert len(queries) == 3
            queries.clear()
            assert await store.load_many(["k", "x", "y"]) == [await store.load("k"), None, None]
            assert [query.split()[0] for query in queries] == ["SELECT", "SELECT"]
    finally:
        await pool.close()


@pytest.mark.anyio
async def test_the_store_pool_spends_no_round_trip_on_resetting_connections(table: str) -> None:
    queries: list[str] = []
    async with PostgresStore.from_url(f"{DSN}?table={table}&cleanup_interval=0&min_size=1&max_size=1") as store:
        assert store.pool is not None
        async with store.pool.acquire() as connection:
            connection.add_query_logger(lambda record: queries.append(record.query))
        queries.clear()
        await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
        await store.load("k")
        assert [query.split()[0] for query in queries] == ["INSERT", "SELECT"]


# Data the database could not hold as it is.


@pytest.mark.anyio
async def test_nul_characters_in_field_names_round_trip(store: PostgresStore) -> None:
    # Values and user IDs with U+0000 are in the contract suite; names are escaped the same way here.
    data = {"a\x00b": "x\x00y", "esc": "\ue000 \ue0000 \ue0001", "nested": {"k\x00": ["\x00", "\ue000"]}, "n": 1}
    await store.create("k", data, ttl=TTL, user_id="user\x00one")
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == data
    assert await store.update("k", {"new\x00": "\x00", "n": 2}, removed=["a\x00b"], ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k")
    assert loaded is not None
    assert loaded.data == {"esc": data["esc"], "nested": data["nested"], "n": 2, "new\x00": "\x00"}


@pytest.mark.anyio
async def test_field_names_beginning_with_a_colon_never_reach_the_format_field(store: PostgresStore) -> None:
    data = {":f": 99, "::x": 1, ":": [":z", '"::v'], "plain": {"::nested": '"::'}}
    await store.create("k", data, ttl=TTL, user_id=None)
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == data
    assert await store.update("k", {":f": 100, "::y": 2}, removed=["::x"], ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k")
    assert loaded is not None
    assert loaded.data == {":f": 100, "::y": 2, ":": [":z", '"::v'], "plain": {"::nested": '"::'}}
    assert run_sql(f"""SELECT data -> ':f' FROM "{store.table}" WHERE key = 'k'""")[0][0] == "1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "user_id", ["'; DROP TABLE fastapi_sessions; --", "u1' OR '1'='1", "%", "_", "u\\1", "$1", "u1\n", " u1"]
)
async def test_user_ids_are_parameters_never_sql(store: PostgresStore, user_id: str) -> None:
    await store.create("mine", {"n": 1}, ttl=TTL, user_id="u1")
    await store.create("hostile", {"n": 2}, ttl=TTL, user_id=user_id)
    assert await store.user_keys(user_id) == ["hostile"]
    assert await store.user_keys("u1") == ["mine"]
    loaded = await store.load("hostile")
    assert loaded is not None and loaded.user_id == user_id
    assert row_count(store.table) == 2


# Configuration.


def test_from_url_keeps_store_options_out_of_the_dsn() -> None:
    store = PostgresStore.from_url(
        "postgres://app:pw@db.internal:6432/app?table=web.sessions&sslmode=require&cleanup_interval=60"
        "&cleanup_batch=50&command_timeout=3&connect_timeout=2&min_size=2&max_size=4&statement_cache_size=0"
        "&create_table=false&application_name=shop"
    )
    assert store._dsn == "postgres://app:pw@db.internal:6432/app?sslmode=require&application_name=shop"
    assert store.table == "web.sessions"
    assert (store.cleanup_interval, store.cleanup_batch, store.create_table) == (60.0, 50, False)
    assert (
        store._pool_options.items()
        >= {
            "min_size": 2,
            "max_size": 4,
            "command_timeout": 3.0,
            "timeout": 2.0,
            "statement_cache_size": 0,
        }.items()
    )
    assert store.location == "PostgreSQL db.internal:6432/app (table web.sessions)"  # no password in messages


@pytest.mark.anyio
async def test_other_url_parameters_reach_the_connection(table: str) -> None:
    url = f"{DSN}?table={table}&cleanup_interval=0&synchronous_commit=off&application_name=shop"
    async with PostgresStore.from_url(url) as store:
        assert store.pool is not None
        settings = await store.pool.fetchrow(
            "SELECT current_setting('synchronous_commit'), current_setting('application_name')"
        )
        assert settings is not None and tuple(settings) == ("off", "shop")


def test_store_from_url_picks_the_postgres_store() -> None:
    assert isinstance(store_from_url("postgresql://postgres@127.0.0.1/test"), PostgresStore)
    assert isinstance(store_from_url("postgres://postgres@127.0.0.1/test"), PostgresStore)


@pytest.mark.anyio
async def test_a_pool_or_a_dsn_not_both() -> None:
    with pytest.raises(SessionConfigError, match="either an asyncpg pool or a dsn"):
        PostgresStore()
    pool = asyncpg.create_pool(DSN, min_size=0)
    with pytest.raises(SessionConfigError, match="either an asyncpg pool or a dsn"):
        PostgresStore(pool, dsn=DSN)


@pytest.mark.anyio
async def test_an_existing_pool_is_used_and_left_open(table: str) -> None:
    pool = await asyncpg.create_pool(DSN, min_size=1, max_size=2)
    try:
        async with PostgresStore(pool, table=table, cleanup_interval=0) as store:
            await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
            loaded = await store.load("k")
            assert loaded is not None and loaded.data == {"a": 1}
        assert not pool.is_closing()
        assert await pool.fetchval(f'SELECT count(*) FROM "{table}"') == 1
    finally:
        await pool.close()


@pytest.mark.anyio
async def test_a_store_made_pool_is_closed_and_made_again_on_reopen(store: PostgresStore) -> None:
    pool = store.pool
    assert pool is not None
    assert await pool.fetchval("SELECT 1") == 1  # the app may share it
    await store.close()
    assert pool.is_closing() and store.pool is None
    await store.open()
    await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
    assert await store.load("k") is not None


@pytest.mark.anyio
async def test_a_wrong_database_fails_the_startup_with_a_clear_message() -> None:
    store = PostgresStore(dsn="postgresql://postgres@127.0.0.1:5432/no_such_db", cleanup_interval=0)
    where = r"PostgreSQL 127\.0\.0\.1:5432/no_such_db"
    with pytest.raises(StoreError, match=rf'at {where} .*database "no_such_db" does not exist'):
        await store.open()
    await store.close()


# Outages, through HTTP.


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    with PgServer() as server:
        yield server


@pytest.mark.slow
def test_a_server_outage_is_a_503_and_the_session_survives_it(
    pg_server: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore.from_url(f"{pg_server.dsn}?connect_timeout=2&command_timeout=2&cleanup_interval=0.05")
    app = login_app(make_manager(AuthSession, store, store_timeout=3, retry_after=7))
    with client(app) as browser:
        assert browser.post("/login/alice").status_code == 200
        cookie = browser.cookies[COOKIE]
        assert browser.get("/me").json() == {"user": "alice"}

        pg_server.stop()
        response = browser.get("/me")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert set_cookies(response) == []  # the cookie stays as it was
        assert browser.get("/health").json() == {"ok": True}

        browser.cookies.clear()
        response = browser.post("/login/bob")
        assert response.status_code == 503
        assert set_cookies(response) == []
        time.sleep(0.2)  # the cleanup task fails meanwhile, and keeps running

        pg_server.start()
        browser.cookies.set(COOKIE, cookie)
        assert browser.get("/me").json() == {"user": "alice"}  # the pool reconnected; no restart
        assert browser.post("/login/bob").status_code == 200
    messages = [record.getMessage() for record in caplog.records if record.name == "fastapi_sessions"]
    assert any("PostgresStore: load at PostgreSQL 127.0.0.1:" in message for message in messages)
    assert any(message.startswith("expired session cleanup failed") for message in messages)


def test_a_server_that_never_answers_is_a_503_within_the_store_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as silent:  # accepts TCP connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test?cleanup_interval=0&connect_timeout=1.5"
        app = login_app(make_manager(AuthSession, PostgresStore.from_url(url), store_timeout=0.3))
        with client(app) as browser:  # startup waits connect_timeout, then the app starts
            caplog.clear()
            response = browser.post("/login/alice")
            assert response.status_code == 503
        # What ended the request is the store timeout, not the (longer) connect timeout.
        assert any("timed out after 0.3 s (SESSION_STORE_TIMEOUT)" in record.getMessage() for record in caplog.records)
