"""How a commit settles a record that changed after it was loaded, step by step, over HTTP.

A store that lets a test act "between" a request's load and its write stands in for the other
request: each `Interleaving` runs just before an update reaches the record.
"""

import base64
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from fastapi_sessions import CorruptRecordError, Counter, MemoryStore, SessionManager, StoredSession, UpdateResult
from tests.support import UserSession, build_app, make_manager

Interleaving = Callable[["RacingStore", str], Awaitable[None]]


class RacingStore(MemoryStore):
    """A memory store that runs the queued interleavings before updates, and can turn corrupt on load.

    An interleaving writes through ``MemoryStore.update`` itself, which runs no interleaving.
    """

    def __init__(self) -> None:
        super().__init__()
        self.interleavings: list[Interleaving] = []
        self.corrupt = False

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        if self.interleavings:
            await self.interleavings.pop(0)(self, key)
        return await super().update(key, changes, removed=removed, ttl=ttl, expected_version=expected_version)

    async def load(self, key: str) -> StoredSession | None:
        if self.corrupt:
            raise CorruptRecordError(f"MemoryStore: the record {key[:8]} is not JSON")
        return await super().load(key)


class Cart(UserSession):
    cart: list[str] = []
    visits: Counter = 0


def other_request(**changes: Any) -> Interleaving:
    async def write(store: RacingStore, key: str) -> None:
        stored = await store.load(key)
        assert stored is not None
        merged = {name: value(stored.data[name]) if callable(value) else value for name, value in changes.items()}
        assert await MemoryStore.update(store, key, merged, ttl=60) is UpdateResult.UPDATED

    return write


def app_over(store: RacingStore, **overrides: Any) -> tuple[TestClient, SessionManager[Cart]]:
    sessions = make_manager(Cart, store, https_only=False, **overrides)
    router = APIRouter()
    Session = Annotated[Cart, Depends(sessions.require_auth)]

    @router.post("/cart/{item}")
    async def add(item: str, session: Session) -> None:
        session.cart.append(item)

    @router.post("/visit")
    async def visit(session: Session) -> None:
        session.visits += 1

    @router.post("/note/{category}")
    async def note(category: str, session: Session) -> None:
        session.flash(f"{category} noted", category)

    @router.get("/state")
    async def state(session: Session) -> dict[str, Any]:
        return {"cart": session.cart, "visits": session.visits, "flashes": [f.message for f in session.pop_flashes()]}

    return TestClient(build_app(sessions, router)), sessions


@pytest.fixture
def store() -> RacingStore:
    return RacingStore()


def log_in(test_client: TestClient) -> None:
    assert test_client.post("/login", params={"uid": "u1"}).status_code == 200


def test_an_append_lands_on_the_record_another_request_changed(store: RacingStore) -> None:
    test_client, _ = app_over(store)
    with test_client as http:
        log_in(http)
        assert http.post("/cart/a").status_code == 200
        store.interleavings.append(other_request(cart=lambda cart: [*cart, "theirs"], visits=5))
        assert http.post("/cart/ours").status_code == 200
        assert http.get("/state").json() == {"cart": ["a", "theirs", "ours"], "visits": 5, "flashes": []}


def test_encrypted_fields_merge_in_clear(store: RacingStore) -> None:
    test_client, sessions = app_over(store, encryption_keys=[base64.urlsafe_b64encode(b"k" * 32).decode()])
    with test_client as http:
        log_in(http)
        assert http.post("/visit").status_code == 200

        async def add_visits(racing: RacingStore, key: str) -> None:
            stored = await racing.load(key)
            assert stored is not None
            visits = sessions._core.policy.decrypt(stored.data, key)["visits"]
            encoded = sessions._core.policy.encode({"visits": visits + 10}, key)
            assert await MemoryStore.update(racing, key, encoded, ttl=60) is UpdateResult.UPDATED

        store.interleavings.append(add_visits)
        assert http.post("/visit").status_code == 200
        assert http.get("/state").json()["visits"] == 12


def test_flash_messages_queued_at_once_are_all_kept(store: RacingStore) -> None:
    test_client, _ = app_over(store)
    with test_client as http:
        log_in(http)

        async def queue_another(racing: RacingStore, key: str) -> None:
            stored = await racing.load(key)
            assert stored is not None
            queued = [*stored.data.get("_flash", []), ["info", "theirs noted"]]
            assert await MemoryStore.update(racing, key, {"_flash": queued}, ttl=60) is UpdateResult.UPDATED

        store.interleavings.append(queue_another)
        assert http.post("/note/ours").status_code == 200
        assert sorted(http.get("/state").json()["flashes"]) == ["ours noted", "theirs noted"]


def test_a_record_deleted_before_the_merge_stays_deleted(store: RacingStore, caplog: pytest.LogCaptureFixture) -> None:
    test_client, _ = app_over(store)
    with test_client as http:
        log_in(http)

        async def log_out(racing: RacingStore, key: str) -> None:
            await other_request(visits=1)(racing, key)
            assert await racing.delete(key, user_id="u1")

        store.interleavings.append(log_out)
        with caplog.at_level(logging.INFO, "fastapi_sessions"):
            response = http.post("/cart/x")
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        assert "session changes dropped" in caplog.text
        assert http.get("/state").status_code == 401


def test_a_record_unreadable_at_the_merge_drops_the_change_with_a_log_line(
    store: RacingStore, caplog: pytest.LogCaptureFixture
) -> None:
    test_client, _ = app_over(store)
    with test_client as http:
        log_in(http)

        async def corrupt(racing: RacingStore, key: str) -> None:
            await other_request(visits=1)(racing, key)
            racing.corrupt = True

        store.interleavings.append(corrupt)
        with caplog.at_level(logging.WARNING, "fastapi_sessions"):
            response = http.post("/cart/x")
        assert response.status_code == 200
        assert "became unreadable" in caplog.text and "is not JSON" in caplog.text


def test_a_commit_that_never_catches_up_answers_409(store: RacingStore) -> None:
    test_client, _ = app_over(store)
    with test_client as http:
        log_in(http)
        store.interleavings.extend([other_request(visits=lambda n: n + 1)] * 100)
        response = http.post("/cart/x")
        assert response.status_code == 409
        assert "in a row; retry" in response.text
        store.interleavings.clear()
        assert http.get("/state").json()["cart"] == []
