"""The store contract, records a store cannot read: every corruption each backend plants, to the store and through HTTP.

A record no release can read (not JSON, fields of the wrong type, the wrong kind of Redis key...) or
one of a format version this release does not know is no session: `load` raises `CorruptRecordError`
naming the store and what is wrong, never a value; `load_many` gives ``None``; `update`, `delete`,
`replace` and `create` never fail on it; a cookie naming it gets a new anonymous session, not a 500.
"""

import logging
import time
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from fastapi_sessions import AuthSession, CorruptRecordError, SessionManager, SessionStore, UpdateResult
from fastapi_sessions.signing import new_session_id
from tests.backends._corrupt import FUTURE, FUTURE_VERSION, Corruptions
from tests.support import Backend, client, login_app, make_manager

TTL = 60.0
SECRET_VALUE = "s3cr3t"
DATA = {"note": SECRET_VALUE, "n": 1}


@pytest.fixture
def corruptions(backend: Backend) -> Corruptions:
    found = backend.extra.get("corruptions")
    if found is None:
        pytest.skip(f"{backend.name} cannot plant corrupt records")
    assert isinstance(found, Corruptions)
    return found


def every_way(corruptions: Corruptions) -> tuple[str, ...]:
    return (*corruptions.hows, FUTURE)


async def plant(store: SessionStore, corruptions: Corruptions, key: str, how: str, data: object = None) -> None:
    await store.create(key, DATA if data is None else data, ttl=TTL, user_id="alice")  # type: ignore[arg-type]
    await corruptions.corrupt(store, key, how)


@pytest.mark.anyio
async def test_a_corrupt_record_is_no_session_to_any_method(store: SessionStore, corruptions: Corruptions) -> None:
    await store.create("good", DATA, ttl=TTL, user_id="alice")
    good = await store.load("good")
    assert good is not None
    for how in every_way(corruptions):
        await plant(store, corruptions, "bad", how)
        with pytest.raises(CorruptRecordError) as raised:
            await store.load("bad")
        message = str(raised.value)
        assert message.startswith(f"{type(store).__name__}: load at {store.location} "), (how, message)
        assert SECRET_VALUE not in message, how
        if how == FUTURE:
            assert f"format version {FUTURE_VERSION} is not one this release reads" in message
        assert await store.load_many(["bad", "good", "missing"]) == [None, good, None], how
        assert "good" in await store.user_keys("alice"), how  # the index may still name it, or not

        # Never a failure, and never a write into a record of a newer release.
        allowed = (UpdateResult.MISSING,) if how == FUTURE else tuple(UpdateResult)
        for expected_version in (None, 1):
            assert await store.update("bad", {"n": 2}, ttl=TTL, expected_version=expected_version) in allowed, how
        if how == FUTURE:
            with pytest.raises(CorruptRecordError, match="format version"):
                await store.load("bad")

        await store.create("bad", {"n": 3}, ttl=TTL, user_id="alice")  # a new record over it
        loaded = await store.load("bad")
        assert loaded is not None and (loaded.data, loaded.version) == ({"n": 3}, 1), how

        await plant(store, corruptions, "bad", how)
        await store.delete("bad", user_id="alice")
        assert await store.load("bad") is None, how

        await plant(store, corruptions, "old", how)
        if await store.replace("old", "new", {"n": 4}, ttl=TTL, user_id="alice", old_user_id="alice"):
            assert await store.load("old") is None, how
            moved = await store.load("new")
            assert moved is not None and moved.data == {"n": 4}, how
        await store.delete("old", user_id="alice")
        await store.delete("new", user_id="alice")
    assert await store.load("good") == good


@pytest.mark.anyio
async def test_cleanup_removes_records_no_release_can_read(store: SessionStore, corruptions: Corruptions) -> None:
    if not corruptions.cleanup_removes:
        pytest.skip("this store's cleanup removes expired records only (or its server expires them itself)")
    ways = every_way(corruptions)
    for index, how in enumerate(ways):
        await plant(store, corruptions, f"bad{index}", how)
    await store.create("good", DATA, ttl=TTL, user_id="alice")
    assert await store.cleanup() == len(corruptions.hows)
    for index, how in enumerate(ways):
        if how == FUTURE:  # a newer release's record, left for it
            with pytest.raises(CorruptRecordError):
                await store.load(f"bad{index}")
        else:
            assert await store.load(f"bad{index}") is None, how
    assert await store.load("good") is not None


@pytest.mark.anyio
async def test_a_record_of_the_release_before_format_versions_reads_as_format_1(
    store: SessionStore, corruptions: Corruptions
) -> None:
    await store.create("k1", DATA, ttl=TTL, user_id="alice")
    await corruptions.strip_format(store, "k1")
    loaded = await store.load("k1")
    assert loaded is not None and (loaded.data, loaded.version, loaded.user_id) == (DATA, 1, "alice")
    assert await store.load_many(["k1"]) == [loaded]
    assert await store.update("k1", {"n": 2}, ttl=TTL, expected_version=1) is UpdateResult.UPDATED
    updated = await store.load("k1")
    assert updated is not None and (updated.data, updated.version) == ({**DATA, "n": 2}, 2)


def corrupt_records_app(sessions: SessionManager[AuthSession]) -> FastAPI:
    """`login_app`, and ``GET /whoami`` (anyone) and ``GET /users/{user_id}/sessions`` (how many)."""
    app = login_app(sessions)

    @app.get("/whoami")
    async def whoami(session: Annotated[AuthSession, Depends(sessions)]) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.get("/users/{user_id}/sessions")
    async def user_sessions(user_id: str) -> dict[str, int]:
        return {"sessions": len(await sessions.list_sessions(user_id))}

    return app


def test_a_cookie_naming_a_corrupt_record_gets_a_new_anonymous_session(
    backend: Backend, corruptions: Corruptions, caplog: pytest.LogCaptureFixture
) -> None:
    store = backend.make_store()
    sessions = make_manager(AuthSession, store)
    with client(corrupt_records_app(sessions)) as browser:
        assert browser.portal is not None
        assert browser.post("/login/alice").status_code == 200
        browser.cookies.clear()
        for how in every_way(corruptions):
            session_id = new_session_id()
            # A record the library itself wrote for alice, then spoiled.
            record = {"_created": time.time(), "_seen": time.time(), "user_id": "alice", "note": SECRET_VALUE}
            browser.portal.call(plant, store, corruptions, sessions.signer.store_key(session_id), how, record)
            caplog.clear()
            caplog.set_level(logging.INFO, "fastapi_sessions")
            cookie = f"{sessions.cookie_name}={sessions.signer.sign(session_id)}"
            response = browser.get("/whoami", headers={"cookie": cookie})
            assert (response.status_code, response.json()) == (200, {"user": None}), how
            warnings = [r for r in caplog.records if r.name == "fastapi_sessions" and r.levelno == logging.WARNING]
            assert any("cannot read" in r.getMessage() for r in warnings), (how, caplog.text)
            assert SECRET_VALUE not in caplog.text and session_id not in caplog.text, how

            response = browser.get("/users/alice/sessions")
            assert (response.status_code, response.json()) == (200, {"sessions": 1}), how
