"""What only the SQLite store does: its file and table, expiry, cleanup, restarts, and several processes."""

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fastapi_sessions import (
    AuthSession,
    SessionConfigError,
    StoreUnavailableError,
    UpdateResult,
    store_from_url,
)
from fastapi_sessions.stores.sqlite import SQLiteStore
from tests.support import FakeClock, client, login_app, make_manager, set_cookies

TTL = 60.0
COOKIE = "__Host-session"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(path, cleanup_interval=0, clock=clock) as opened:
        yield opened


def query(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        rows: list[tuple[object, ...]] = db.execute(sql, args).fetchall()
    db.close()
    return rows


# URLs.


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///sessions.db", "sessions.db"),
        ("sqlite:///data/sessions.db", "data/sessions.db"),
        ("sqlite:////var/lib/app/sessions.db", "/var/lib/app/sessions.db"),
        ("sqlite:///my%20app.db", "my app.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_from_url_paths(url: str, expected: str) -> None:
    store = SQLiteStore.from_url(url)
    assert store.path == expected


def test_from_url_options() -> None:
    store = SQLiteStore.from_url("sqlite:///s.db?table=web&busy_timeout=10&cleanup_interval=0&cleanup_batch=7")
    assert (store.table, store.busy_timeout, store.cleanup_interval, store.cleanup_batch) == ("web", 10.0, 0.0, 7)
    assert isinstance(store_from_url("sqlite:///s.db"), SQLiteStore)


@pytest.mark.parametrize("name", ["", "1abc", "a;b", 'a"b', "a b", "a.b", "x" * 64, "t; DROP TABLE x"])
def test_bad_table_names_are_refused(name: str) -> None:
    with pytest.raises(SessionConfigError, match="is not a valid name"):
        SQLiteStore("s.db", table=name)


# The file and the table.


@pytest.mark.anyio
async def test_open_creates_the_table_and_indexes_in_wal_mode(store: SQLiteStore, path: Path) -> None:
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    names = {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE tbl_name = 'fastapi_sessions'")}
    assert {"fastapi_sessions", "fastapi_sessions_expires_at_idx", "fastapi_sessions_user_id_idx"} <= names
    plan = query(
        path, "EXPLAIN QUERY PLAN SELECT key FROM fastapi_sessions WHERE user_id = ? AND expires_at > ?", "u", 0
    )
    assert "fastapi_sessions_user_id_idx" in str(plan)  # an index lookup, never a scan
    async with SQLiteStore(path, cleanup_interval=0) as again:  # idempotent
        assert await again.load("k") is None


@pytest.mark.anyio
async def test_a_memory_database_lives_as_long_as_the_store(clock: FakeClock) -> None:
    async with SQLiteStore(":memory:", cleanup_interval=0, clock=clock) as store:
        await store.create("k", {"a": 1}, ttl=TTL, user_id="u")
        assert await store.user_keys("u") == ["k"]


@pytest.mark.anyio
async def test_a_missing_directory_is_reported_at_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "missing" / "sessions.db")
    with pytest.raises(StoreUnavailableError, match=r"SQLiteStore: open at SQLite .*missing.* failed: .*unable"):
        await store.open()
    await store.close()


# Expiry and cleanup, by the app's clock.


@pytest.mark.anyio
async def test_expiry_follows_the_store_clock(store: SQLiteStore, path: Path, clock: FakeClock) -> None:
    await store.create("k", {"a": 1}, ttl=10, user_id="u1")
    clock.advance(9.9)
    assert await store.load("k") is not None
    clock.advance(0.1)  # a record expires at its deadline exactly
    assert await store.load_many(["k"]) == [None]
    assert len(query(path, "SELECT key FROM fastapi_sessions")) == 1  # filtered out, still there


@pytest.mark.anyio
async def test_updates_reset_the_expiry(store: SQLiteStore, clock: FakeClock) -> None:
    await store.create("k", {"a": 1}, ttl=10, user_id=None)
    clock.advance(9)
    assert await store.update("k", {"a": 2}, ttl=10) is UpdateResult.UPDATED
    clock.advance(9)
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == {"a": 2} and loaded.version == 2


@pytest.mark.anyio
async def test_cleanup_deletes_expired_rows_in_batches(path: Path, clock: FakeClock) -> None:
    async with SQLiteStore(path, cleanup_interval=0, cleanup_batch=3, clock=clock) as store:
        for index in range(10):
            await store.create(f"old{index}", {"a": index}, ttl=5, user_id="u")
        await store.create("live", {"a": 1}, ttl=TTL, user_id="u")
        clock.advance(5)
        assert await store.cleanup() == 10  # four transactions: 3 + 3 + 3 + 1
        assert query(path, "SELECT key FROM fastapi_sessions") == [("live",)]
        assert await store.cleanup() == 0


@pytest.mark.anyio
async def test_the_background_task_deletes_expired_rows(path: Path, clock: FakeClock) -> None:
    async with SQLiteStore(path, cleanup_interval=0.02, clock=clock) as store:
        await store.create("old", {"a": 1}, ttl=5, user_id=None)
        await store.create("live", {"a": 1}, ttl=TTL, user_id=None)
        clock.advance(5)
        deadline = time.monotonic() + 5
        while len(query(path, "SELECT key FROM fastapi_sessions")) > 1:
            assert time.monotonic() < deadline, "the cleanup task did not run"
            await asyncio.sleep(0.02)
    assert store._cleanup_task is None


# Data.


@pytest.mark.anyio
async def test_nul_characters_in_names_and_hostile_user_ids_round_trip(store: SQLiteStore) -> None:
    data = {"a\x00b": "x\x00y", "nested": {"k\x00": ["\x00"]}, "quote": "'; DROP TABLE fastapi_sessions; --"}
    hostile = "u1' OR '1'='1"
    await store.create("k", data, ttl=TTL, user_id="user\x00one")
    await store.create("h", {"n": 1}, ttl=TTL, user_id=hostile)
    await store.create("u", {"n": 1}, ttl=TTL, user_id="u1")
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == data and loaded.user_id == "user\x00one"
    assert await store.user_keys("user\x00one") == ["k"]
    assert await store.user_keys("user") == []
    assert await store.user_keys(hostile) == ["h"]
    assert await store.user_keys("u1") == ["u"]
    assert await store.update("k", {"new\x00": "\x00"}, removed=["a\x00b"], ttl=TTL) is UpdateResult.UPDATED
    loaded = await store.load("k")
    assert loaded is not None and loaded.data == {"nested": data["nested"], "quote": data["quote"], "new\x00": "\x00"}


@pytest.mark.anyio
async def test_load_many_beyond_the_parameter_limit(store: SQLiteStore) -> None:
    for index in range(0, 1200, 3):
        await store.create(f"k{index}", {"n": index}, ttl=TTL, user_id=None)
    keys = [f"k{index}" for index in range(1200)]
    loaded = await store.load_many(keys)
    assert [item.data["n"] if item else None for item in loaded] == [i if i % 3 == 0 else None for i in range(1200)]


@pytest.mark.anyio
async def test_data_survives_a_restart(path: Path) -> None:
    async with SQLiteStore(path, cleanup_interval=0) as store:
        await store.create("k", {"a": [1, 2]}, ttl=TTL, user_id="u")
        await store.update("k", {"b": True}, ttl=TTL)
    async with SQLiteStore(path, cleanup_interval=0) as reopened:
        loaded = await reopened.load("k")
        assert loaded is not None
        assert (loaded.data, loaded.version, loaded.user_id) == ({"a": [1, 2], "b": True}, 2, "u")
        assert await reopened.user_keys("u") == ["k"]


# Several stores and several processes on one file.


@pytest.mark.anyio
async def test_two_stores_on_one_file_lose_no_update(path: Path) -> None:
    async with SQLiteStore(path, cleanup_interval=0) as first, SQLiteStore(path, cleanup_interval=0) as second:
        await first.create("k", {"base": 0}, ttl=TTL, user_id=None)
        updates = [(first if i % 2 else second).update("k", {f"f{i}": i}, ttl=TTL) for i in range(60)]
        assert set(await asyncio.gather(*updates)) == {UpdateResult.UPDATED}
        loaded = await second.load("k")
        assert loaded is not None and loaded.version == 61
        assert loaded.data == {"base": 0, **{f"f{i}": i for i in range(60)}}


WORKER = """
import asyncio, sys
from fastapi_sessions.stores.sqlite import SQLiteStore

async def main(path, worker, count):
    async with SQLiteStore(path, cleanup_interval=0) as store:
        for index in range(count):
            result = await store.update("shared", {f"w{worker}_{index}": index}, ttl=60)
            assert result.value == "updated", result
            await store.create(f"own{worker}_{index}", {"n": index}, ttl=60, user_id=f"user{worker}")

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


@pytest.mark.slow
@pytest.mark.anyio
async def test_several_processes_on_one_file(path: Path) -> None:
    workers, count = 4, 100
    async with SQLiteStore(path, cleanup_interval=0) as store:
        await store.create("shared", {"base": 0}, ttl=TTL, user_id=None)
        processes = [
            subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(worker), str(count)], cwd=ROOT)
            for worker in range(workers)
        ]
        for process in processes:
            assert await asyncio.to_thread(process.wait, 60) == 0
        loaded = await store.load("shared")
        assert loaded is not None
        assert loaded.version == 1 + workers * count
        assert loaded.data == {"base": 0, **{f"w{w}_{i}": i for w in range(workers) for i in range(count)}}
        for worker in range(workers):
            assert len(await store.user_keys(f"user{worker}")) == count


@pytest.mark.anyio
async def test_a_write_lock_held_too_long_is_unavailable_and_reads_go_on(path: Path) -> None:
    async with SQLiteStore(path, busy_timeout=0.1, cleanup_interval=0) as store:
        await store.create("k", {"a": 1}, ttl=TTL, user_id=None)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
            with pytest.raises(
                StoreUnavailableError,
                match=r"SQLiteStore: update at SQLite .* failed: .*database is locked",
            ):
                await store.update("k", {"a": 2}, ttl=TTL)
            loaded = await store.load("k")  # WAL: readers do not wait for the writer
            assert loaded is not None and loaded.data == {"a": 1}
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await store.update("k", {"a": 2}, ttl=TTL) is UpdateResult.UPDATED


# Through HTTP.


def test_a_session_survives_an_app_restart(path: Path) -> None:
    url = f"sqlite:///{path}"
    first = login_app(make_manager(AuthSession, store_from_url(url)))
    with client(first) as browser:
        assert browser.post("/login/alice").status_code == 200
        cookie = browser.cookies[COOKIE]
    second = login_app(make_manager(AuthSession, store_from_url(url)))
    with client(second) as browser:
        browser.cookies.set(COOKIE, cookie)
        assert browser.get("/me").json() == {"user": "alice"}


def test_a_locked_database_is_a_503_for_writes_only(path: Path) -> None:
    app = login_app(make_manager(AuthSession, SQLiteStore(path, busy_timeout=0.1, cleanup_interval=0)))
    with client(app) as browser:
        assert browser.post("/login/alice").status_code == 200
        cookie = browser.cookies[COOKIE]
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            assert browser.get("/me").json() == {"user": "alice"}
            browser.cookies.clear()
            response = browser.post("/login/bob")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert set_cookies(response) == []
        finally:
            other.close()
        browser.cookies.set(COOKIE, cookie)
        assert browser.get("/me").json() == {"user": "alice"}
