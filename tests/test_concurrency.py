"""Real concurrent HTTP requests against a real uvicorn server, on every store: count what survives."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI

from fastapi_sessions import AuthSession, SessionManager
from tests.support import Backend, free_port, make_manager

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class Counters(AuthSession):
    count: int = 0
    fields: dict[str, int] = {}
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0


def build_app(sessions: SessionManager[Counters], gate: threading.Event | None = None) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[Counters, Depends(sessions)]

    @app.post("/start")
    async def start(session: Session) -> int:
        session.login("u1")
        return session.count

    @app.post("/incr")
    async def incr(session: Session) -> int:
        session.count += 1
        return session.count

    @app.get("/read")
    async def read(session: Session) -> int:
        await asyncio.sleep(0)  # let other requests interleave between load and commit
        return session.count

    @app.post("/set/{name}")
    async def set_field(name: str, session: Session) -> None:
        await asyncio.sleep(0.01)
        setattr(session, name, getattr(session, name) + 1)

    @app.post("/slow")
    async def slow(session: Session) -> None:
        assert gate is not None
        while not gate.is_set():
            await asyncio.sleep(0.01)
        session.count += 100

    @app.post("/login")
    async def login(session: Session) -> None:
        session.login("u2")

    @app.get("/fields")
    async def fields(session: Session) -> list[int]:
        return [session.a, session.b, session.c, session.d]

    @app.post("/logout")
    async def logout(session: Session) -> None:
        session.logout()

    @app.get("/me")
    async def me(session: Annotated[Counters, Depends(sessions.require_auth)]) -> int:
        return session.count

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def session_client(base_url: str, cookie: str | None = None) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=64))
    if cookie is not None:
        http.cookies.set("session", cookie)
    return http


async def test_no_lost_updates_while_reads_race(backend: Backend) -> None:
    app = build_app(make_manager(Counters, backend.make_store(), https_only=False))
    with serve(app) as url:
        async with session_client(url) as http:
            await http.post("/start")
            stop = asyncio.Event()

            async def reader() -> int:
                reads = 0
                while not stop.is_set():
                    response = await http.get("/read")
                    assert response.status_code == 200
                    assert "set-cookie" not in response.headers
                    reads += 1
                return reads

            readers = [asyncio.create_task(reader()) for _ in range(16)]
            for expected in range(1, 301):
                response = await http.post("/incr")
                assert response.json() == expected
            stop.set()
            reads = sum(await asyncio.gather(*readers))
            assert reads > 0
            assert (await http.get("/me")).json() == 300


async def test_concurrent_changes_to_different_fields_all_persist(backend: Backend) -> None:
    app = build_app(make_manager(Counters, backend.make_store(), https_only=False))
    with serve(app) as url:
        async with session_client(url) as http:
            await http.post("/start")
            for _ in range(10):
                responses = await asyncio.gather(*(http.post(f"/set/{name}") for name in "abcd"))
                assert [response.status_code for response in responses] == [200] * 4
            assert (await http.get("/fields")).json() == [10, 10, 10, 10]


async def test_strict_updates_answer_409_instead_of_losing_a_write(backend: Backend) -> None:
    app = build_app(make_manager(Counters, backend.make_store(), https_only=False, strict_updates=True))
    with serve(app) as url:
        async with session_client(url) as http:
            await http.post("/start")
            responses = await asyncio.gather(*(http.post("/incr") for _ in range(20)))
            assert {response.status_code for response in responses} <= {200, 409}
            winners = sorted(response.json() for response in responses if response.status_code == 200)
            # Every accepted write built on the one before it: none was silently overwritten.
            assert winners == list(range(1, len(winners) + 1))
            assert (await http.get("/me")).json() == len(winners)


async def test_a_logout_racing_a_slow_write_stays_a_logout(backend: Backend) -> None:
    gate = threading.Event()
    app = build_app(make_manager(Counters, backend.make_store(), https_only=False), gate)
    with serve(app) as url:
        async with session_client(url) as http:
            await http.post("/start")
            cookie = http.cookies["session"]
            slow = asyncio.create_task(http.post("/slow"))
            await asyncio.sleep(0.2)  # the slow request has loaded the session and waits
            async with session_client(url, cookie) as other_tab:
                assert (await other_tab.post("/logout")).status_code == 200
            gate.set()
            response = await slow
            assert response.status_code == 200
            assert "set-cookie" not in response.headers  # the logout already answered for the cookie
        async with session_client(url, cookie) as replay:
            assert (await replay.get("/me")).status_code == 401


async def test_a_slow_write_with_the_old_cookie_does_not_undo_a_login(backend: Backend) -> None:
    gate = threading.Event()
    app = build_app(make_manager(Counters, backend.make_store(), https_only=False), gate)
    with serve(app) as url:
        async with session_client(url) as browser:
            await browser.post("/incr")  # an anonymous session
            slow = asyncio.create_task(browser.post("/slow"))  # loads it, then waits
            await asyncio.sleep(0.2)
            login = await browser.post("/login")  # a new ID; the old record is gone
            assert "set-cookie" in login.headers
            gate.set()
            late = await slow
            assert late.status_code == 200
            assert "set-cookie" not in late.headers  # clearing the cookie by name would log the user out
            assert (await browser.get("/me")).json() == 1
