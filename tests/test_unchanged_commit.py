"""A request that leaves its session as loaded writes nothing; any change, however made, is written.

The commit tells the two apart without dumping the model when every field still holds the object the
load gave it, of a type that cannot change in place. These tests hold it to both halves, through HTTP.
"""

import datetime as dt
import enum
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import MemoryStore, SessionManager, SessionModel
from tests.support.browser import client
from tests.support.counting_store import CountingStore
from tests.support.manager import make_manager


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


class Profile(SessionModel):
    theme: str = "light"


class Visit(SessionModel):
    name: str = ""
    count: int = 0
    tier: Tier = Tier.FREE
    seen_at: dt.datetime | None = None
    tags: list[str] = []
    prefs: dict[str, int] = {}
    profile: Profile = Profile()
    history: tuple[str, ...] = ()


def visit_app(sessions: SessionManager[Visit]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    router = APIRouter()
    Session = Annotated[Visit, Depends(sessions)]

    @router.post("/start")
    async def start(session: Session) -> dict[str, bool]:
        session.name = "ada"
        return {"ok": True}

    @router.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return {"name": session.name, "count": session.count, "tags": list(session.tags)}

    @router.post("/same-values")
    async def same_values(session: Session) -> dict[str, bool]:
        session.name = "".join(["a", "da"])  # an equal string, another object
        session.count = int("0")
        return {"ok": True}

    @router.post("/append")
    async def append(session: Session) -> dict[str, bool]:
        session.tags.append("new")  # in place: no assignment at all
        return {"ok": True}

    @router.post("/prefs")
    async def prefs(session: Session) -> dict[str, bool]:
        session.prefs["size"] = 3
        return {"ok": True}

    @router.post("/nested")
    async def nested(session: Session) -> dict[str, bool]:
        session.profile.theme = "dark"
        return {"ok": True}

    @router.post("/enum-and-datetime")
    async def enum_and_datetime(session: Session) -> dict[str, bool]:
        session.tier = Tier.PRO
        session.seen_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        return {"ok": True}

    @router.post("/history")
    async def history(session: Session) -> dict[str, bool]:
        session.history = (*session.history, "page")
        return {"ok": True}

    @router.get("/dump")
    async def dump(session: Session) -> dict[str, Any]:
        return session.model_dump(mode="json")

    app.include_router(router)
    return app


@pytest.fixture
def served() -> Iterator[tuple[TestClient, CountingStore]]:
    store = CountingStore(MemoryStore())
    with client(visit_app(make_manager(Visit, store))) as test_client:
        assert test_client.post("/start").status_code == 200
        store.reset()
        yield test_client, store


def test_a_read_writes_nothing(served: tuple[TestClient, CountingStore]) -> None:
    test_client, store = served
    for _ in range(3):
        assert test_client.get("/read").json() == {"name": "ada", "count": 0, "tags": []}
    assert store.writes == 0


def test_assigning_equal_values_writes_nothing(served: tuple[TestClient, CountingStore]) -> None:
    test_client, store = served
    assert test_client.post("/same-values").status_code == 200
    assert store.writes == 0


def test_every_kind_of_change_is_written(served: tuple[TestClient, CountingStore]) -> None:
    test_client, store = served
    for path in ("/append", "/prefs", "/nested", "/enum-and-datetime", "/history"):
        assert test_client.post(path).status_code == 200
    assert store.calls["update"] == 5
    assert test_client.get("/dump").json() == {
        "name": "ada",
        "count": 0,
        "tier": "pro",
        "seen_at": "2026-01-02T03:04:05Z",
        "tags": ["new"],
        "prefs": {"size": 3},
        "profile": {"theme": "dark"},
        "history": ["page"],
    }
