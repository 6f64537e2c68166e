"""Real concurrent HTTP requests against a real uvicorn server, on every store: count what survives.

Each race is staged, not hoped for: the requests that must overlap are parked in a `Hold` after
loading their session, the competing request commits, then they are released. A free-running round
with a bounded number of requests follows where interleavings nobody staged matter too.
"""

import asyncio
from functools import partial
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from fastapi_sessions import SessionManager
from tests.support import Backend, UserSession, build_app, make_manager
from tests.support.live_server import Holds, live_client, live_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FIELDS = "abcd"


class Counters(UserSession):
    count: int = 0
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0


def counter_routes(sessions: SessionManager[Counters], holds: Holds) -> APIRouter:
    """Routes over the counters; ``?hold=name`` parks the request in ``holds[name]`` after its session loaded."""
    router = APIRouter()
    Session = Annotated[Counters, Depends(sessions)]

    @router.post("/incr")
    async def incr(session: Session, hold: str | None = None) -> int:
        await holds.pause(hold)
        session.count += 1
        return session.count

    @router.get("/count")
    async def count(session: Session, hold: str | None = None) -> int:
        await holds.pause(hold)
        return session.count

    @router.post("/bump/{name}")
    async def bump(name: str, session: Session, hold: str | None = None) -> None:
        await holds.pause(hold)
        setattr(session, name, getattr(session, name) + 1)

    @router.get("/counters")
    async def counters(session: Annotated[Counters, Depends(sessions.require_auth)]) -> dict[str, int]:
        return {name: getattr(session, name) for name in ("count", *FIELDS)}

    return router


def counters_app(backend: Backend, holds: Holds, **overrides: Any) -> FastAPI:
    sessions = make_manager(Counters, backend.make_store(), https_only=False, **overrides)
    return build_app(sessions, counter_routes(sessions, holds))


async def log_in(http: httpx.AsyncClient, uid: str = "u1") -> str:
    response = await http.post("/login", params={"uid": uid})
    assert response.status_code == 200, response.text
    return http.cookies["session"]


async def counters(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/counters")
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


def assert_read_only(response: httpx.Response, expected: int) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == expected, f"a read saw {response.json()}, expected {expected}"
    assert "set-cookie" not in response.headers, "a read answered with a cookie: it wrote the session"


ROUNDS = 8
READERS = 4
FREE_INCREMENTS = 30
FREE_READS = 15


async def test_no_lost_updates_while_reads_race(backend: Backend) -> None:
    holds = Holds()
    with live_server(counters_app(backend, holds), holds) as url:
        async with live_client(url) as http:
            await log_in(http)
            # Staged: each round's readers load the session, an increment commits, then they commit.
            for expected in range(1, ROUNDS + 1):
                async with holds.parked(*[partial(http.get, "/count")] * READERS) as reads:
                    increment = await http.post("/incr")
                assert increment.json() == expected, f"round {expected}: the increment answered {increment.json()}"
                for read in reads:
                    assert_read_only(read, expected - 1)
                assert (await counters(http))["count"] == expected, f"round {expected}: a stale read undid the write"

            # Free-running: increments one after another while readers loop, bounded on both sides.
            async def reader() -> None:
                for _ in range(FREE_READS):
                    response = await http.get("/count")
                    assert response.status_code == 200, response.text
                    assert "set-cookie" not in response.headers

            async with asyncio.TaskGroup() as group:
                for _ in range(READERS):
                    group.create_task(reader())
                for expected in range(ROUNDS + 1, ROUNDS + FREE_INCREMENTS + 1):
                    response = await http.post("/incr")
                    assert response.json() == expected, f"increment {expected} answered {response.json()}"
            assert (await counters(http))["count"] == ROUNDS + FREE_INCREMENTS


async def test_concurrent_changes_to_different_fields_all_persist(backend: Backend) -> None:
    holds = Holds()
    with live_server(counters_app(backend, holds), holds) as url:
        async with live_client(url) as http:
            await log_in(http)
            for round_ in range(1, ROUNDS + 1):
                # Every request loads the same version, then all four commit a different field.
                async with holds.parked(*[partial(http.post, f"/bump/{name}") for name in FIELDS]) as bumps:
                    pass  # all four hold the same version: released together, they race to commit
                assert [bump.status_code for bump in bumps] == [200] * len(FIELDS)
                assert await counters(http) == {"count": 0, **dict.fromkeys(FIELDS, round_)}, f"round {round_}"


async def test_strict_updates_answer_409_instead_of_losing_a_write(backend: Backend) -> None:
    holds = Holds()
    with live_server(counters_app(backend, holds, strict_updates=True), holds) as url:
        async with live_client(url) as http:
            await log_in(http)
            # Staged: all load version 1, so exactly one commit can build on it; the rest must say so.
            async with holds.parked(*[partial(http.post, "/incr")] * READERS) as staged:
                pass  # released together, they race to commit over the same version
            statuses = sorted(response.status_code for response in staged)
            assert statuses == [200] + [409] * (READERS - 1), statuses
            assert [response.json() for response in staged if response.status_code == 200] == [1]
            assert (await counters(http))["count"] == 1

            # Free-running: however they interleave, every accepted write built on the one before it.
            responses = await asyncio.gather(*(http.post("/incr") for _ in range(20)))
            assert {response.status_code for response in responses} <= {200, 409}
            winners = sorted(response.json() for response in responses if response.status_code == 200)
            assert winners == list(range(2, len(winners) + 2)), f"a write was silently overwritten: {winners}"
            assert (await counters(http))["count"] == len(winners) + 1


async def test_a_logout_racing_a_slow_write_stays_a_logout(backend: Backend) -> None:
    holds = Holds()
    with live_server(counters_app(backend, holds), holds) as url:
        async with live_client(url) as http:
            cookie = await log_in(http)
            async with holds.parked(partial(http.post, "/incr")) as slow:  # it loaded the session and waits
                async with live_client(url, cookie) as other_tab:
                    assert (await other_tab.post("/logout")).status_code == 200
            [response] = slow
            assert response.status_code == 200, response.text
            assert "set-cookie" not in response.headers, "the logout already answered for the cookie"
        async with live_client(url, cookie) as replay:
            assert (await replay.get("/me")).status_code == 401, "the slow write brought the session back"


async def test_a_slow_write_with_the_old_cookie_does_not_undo_a_login(backend: Backend) -> None:
    holds = Holds()
    with live_server(counters_app(backend, holds), holds) as url:
        async with live_client(url) as browser:
            assert (await browser.post("/incr")).json() == 1  # an anonymous session
            async with holds.parked(partial(browser.post, "/incr")) as slow:  # it loaded the anonymous session
                login = await browser.post("/login", params={"uid": "u2"})  # a new ID; the old record is gone
                assert "set-cookie" in login.headers
            [late] = slow
            assert late.status_code == 200, late.text
            assert "set-cookie" not in late.headers, "clearing the cookie by name would log the user out"
            assert (await counters(browser))["count"] == 1, "the slow write landed on the logged-in session"
