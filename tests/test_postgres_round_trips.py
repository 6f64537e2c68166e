"""What each request costs the PostgreSQL server: the statements it receives, counted on the store's one connection.

The store's pool has one connection here, so every statement of a request (and anything the pool
would run on release) goes through the query logger attached to it.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from fastapi_sessions import Counter, SessionModel, UpdateResult
from fastapi_sessions.stores.postgres import PostgresStore
from tests.backends.postgres import DSN, new_table, run_sql
from tests.support import client, make_manager

TTL = 60.0


class Cart(SessionModel):
    theme: str = "light"
    items: list[str] = []
    visits: Counter = 0


@pytest.fixture
def table() -> Iterator[str]:
    name = new_table()
    yield name
    run_sql(f'DROP TABLE IF EXISTS "{name}"')


def counted(table: str) -> tuple[PostgresStore, list[str]]:
    """A store whose pool holds one connection, and the statements that connection will run."""
    store = PostgresStore.from_url(f"{DSN}?table={table}&cleanup_interval=0&min_size=1&max_size=1")
    return store, []


async def log_queries(store: PostgresStore, queries: list[str]) -> None:
    assert store.pool is not None
    async with store.pool.acquire() as connection:
        connection.add_query_logger(lambda record: queries.append(record.query))


@pytest.fixture
async def store(table: str) -> AsyncIterator[tuple[PostgresStore, list[str]]]:
    made, queries = counted(table)
    async with made:
        await log_queries(made, queries)
        queries.clear()
        yield made, queries


def verbs(queries: list[str]) -> list[str]:
    return [query.split()[0] for query in queries]


# Store operations.


@pytest.mark.anyio
async def test_a_compare_and_set_is_one_statement_whatever_it_finds(store: tuple[PostgresStore, list[str]]) -> None:
    sessions, queries = store
    await sessions.create("k", {"a": 1}, ttl=TTL, user_id=None)
    queries.clear()
    assert await sessions.update("k", {"a": 2}, ttl=TTL, expected_version=1) is UpdateResult.UPDATED
    assert await sessions.update("k", {"a": 3}, ttl=TTL, expected_version=1) is UpdateResult.CONFLICT
    assert await sessions.update("gone", {"a": 3}, ttl=TTL, expected_version=1) is UpdateResult.MISSING
    assert len(queries) == 3
    loaded = await sessions.load("k")
    assert loaded is not None and loaded.data == {"a": 2} and loaded.version == 2


@pytest.mark.anyio
async def test_a_compare_and_set_on_a_record_no_release_may_write_is_missing(
    store: tuple[PostgresStore, list[str]],
) -> None:
    sessions, _ = store
    await sessions.create("k", {"a": 1}, ttl=TTL, user_id=None)
    run_sql(f"""UPDATE "{sessions.table}" SET data = data || '{{":f": 99}}'::jsonb WHERE key = 'k'""")
    assert await sessions.update("k", {"a": 2}, ttl=TTL, expected_version=1) is UpdateResult.MISSING
    assert await sessions.update("k", {"a": 2}, ttl=TTL) is UpdateResult.MISSING


@pytest.mark.anyio
async def test_a_regeneration_is_one_statement(store: tuple[PostgresStore, list[str]]) -> None:
    sessions, queries = store
    await sessions.create("old", {"a": 1}, ttl=TTL, user_id="u")
    queries.clear()
    assert await sessions.replace("old", "new", {"a": 2}, ttl=TTL, user_id="u", old_user_id="u")
    assert verbs(queries) == ["UPDATE"]
    assert await sessions.load("old") is None
    moved = await sessions.load("new")
    assert moved is not None and moved.data == {"a": 2} and moved.user_id == "u"


@pytest.mark.anyio
@pytest.mark.parametrize("leftover_expired", [False, True])
async def test_a_regeneration_onto_a_leftover_row_replaces_it(
    store: tuple[PostgresStore, list[str]], leftover_expired: bool
) -> None:
    sessions, _ = store
    await sessions.create("old", {"a": 1}, ttl=TTL, user_id="u")
    await sessions.create("new", {"leftover": True}, ttl=TTL, user_id="someone else")
    if leftover_expired:
        run_sql(f"""UPDATE "{sessions.table}" SET expires_at = now() - interval '1 minute' WHERE key = 'new'""")
    assert await sessions.replace("old", "new", {"a": 2}, ttl=TTL, user_id="u", old_user_id="u")
    moved = await sessions.load("new")
    assert moved is not None and moved.data == {"a": 2} and moved.user_id == "u" and moved.version == 1
    assert await sessions.user_keys("someone else") == []
    assert await sessions.load("old") is None


@pytest.mark.anyio
async def test_a_regeneration_of_a_gone_session_moves_nothing_even_onto_a_leftover(
    store: tuple[PostgresStore, list[str]],
) -> None:
    sessions, _ = store
    await sessions.create("new", {"leftover": True}, ttl=TTL, user_id=None)
    assert not await sessions.replace("old", "new", {"a": 2}, ttl=TTL, user_id=None, old_user_id=None)
    assert await sessions.load("old") is None


# Requests.


def cart_app(store: PostgresStore) -> FastAPI:
    sessions = make_manager(Cart, store)
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[Cart, Depends(sessions)]

    @app.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return {"theme": session.theme, "items": session.items, "visits": session.visits}

    @app.post("/theme/{theme}")
    async def set_theme(theme: str, session: Session) -> dict[str, str]:
        session.theme = theme  # a whole value: written blind
        return {"theme": theme}

    @app.post("/visit")
    async def visit(session: Session) -> dict[str, int]:
        session.visits += 1  # a counter: written over the version the request loaded
        return {"visits": session.visits}

    return app


def test_a_read_is_one_query_and_a_write_two(table: str) -> None:
    sessions, queries = counted(table)
    with client(cart_app(sessions)) as browser:
        assert browser.post("/theme/dark").status_code == 200  # creates the session
        browser.portal.call(log_queries, sessions, queries)  # type: ignore[union-attr]
        queries.clear()

        assert browser.get("/read").json() == {"theme": "dark", "items": [], "visits": 0}
        assert verbs(queries) == ["SELECT"]
        queries.clear()

        assert browser.post("/theme/blue").status_code == 200
        assert verbs(queries) == ["SELECT", "UPDATE"]
        queries.clear()

        assert browser.post("/visit").json() == {"visits": 1}
        assert verbs(queries) == ["SELECT", "WITH"]  # the compare-and-set
        queries.clear()

        assert browser.get("/read").json() == {"theme": "blue", "items": [], "visits": 1}
        assert verbs(queries) == ["SELECT"]
