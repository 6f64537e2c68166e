"""The cookie rides on whatever the route returns, and store failures get honest answers."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel
from starlette.types import Message

from fastapi_sessions import (
    AuthSession,
    MemoryStore,
    SessionManager,
    SessionModel,
    StoredSession,
    StoreUnavailableError,
)
from tests.support import CountingStore, client, make_manager, set_cookies


class Cart(SessionModel):
    items: list[int] = []


class Reply(BaseModel):
    items: list[int]


def cart_app(sessions: SessionManager[Cart]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[Cart, Depends(sessions)]

    @app.post("/model")
    async def as_model(session: Session) -> Reply:
        session.items.append(1)
        return Reply(items=session.items)

    @app.post("/dict")
    async def as_dict(session: Session) -> dict[str, list[int]]:
        session.items.append(2)
        return {"items": session.items}

    @app.post("/redirect")
    async def as_redirect(session: Session) -> RedirectResponse:
        session.items.append(3)
        return RedirectResponse("/items", status_code=303)

    @app.post("/stream")
    async def as_stream(session: Session) -> StreamingResponse:
        session.items.append(4)

        async def body() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(body(), media_type="text/plain")

    @app.post("/text")
    async def as_text(session: Session) -> PlainTextResponse:
        session.items.append(5)
        return PlainTextResponse("ok", headers={"Vary": "Accept-Encoding", "Cache-Control": "max-age=60"})

    @app.get("/items")
    async def items(session: Session) -> list[int]:
        return session.items

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"session": "unused"}

    return app


@pytest.mark.parametrize(
    ("path", "item"), [("/model", 1), ("/dict", 2), ("/redirect", 3), ("/stream", 4), ("/text", 5)]
)
def test_the_cookie_rides_on_any_response(path: str, item: int) -> None:
    app = cart_app(make_manager(Cart, MemoryStore()))
    with client(app) as browser:
        response = browser.post(path, follow_redirects=False)
        [cookie] = set_cookies(response)
        assert cookie.startswith("__Host-session=")
        assert response.headers["cache-control"] == "no-store"
        assert "Cookie" in response.headers["vary"]
        assert browser.get("/items").json() == [item]


def test_existing_vary_is_extended() -> None:
    app = cart_app(make_manager(Cart, MemoryStore()))
    with client(app) as browser:
        response = browser.post("/text")
        assert response.headers["vary"] == "Accept-Encoding, Cookie"


def test_a_route_without_the_session_is_untouched() -> None:
    store = CountingStore(MemoryStore())
    app = cart_app(make_manager(Cart, store))
    with client(app) as browser:
        browser.post("/dict")
        store.reset()
        response = browser.get("/plain")
        assert response.json() == {"session": "unused"}
        assert "vary" not in response.headers and "cache-control" not in response.headers
        assert set_cookies(response) == []
        assert store.io == 0


class BrokenStore(CountingStore):
    """A memory store whose server can be switched off."""

    FAILING: tuple[str, ...] = ("load", "create", "update", "delete")

    def __init__(self) -> None:
        super().__init__(MemoryStore())
        self.down = False
        self.error: Exception = StoreUnavailableError("BrokenStore: connection refused")

    def _called(self, name: str) -> None:
        super()._called(name)
        if self.down and name in self.FAILING:
            raise self.error


@pytest.mark.parametrize(
    "error", [StoreUnavailableError("BrokenStore: connection refused"), ConnectionRefusedError(111, "refused")]
)
def test_store_down_is_a_503_not_a_logout(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    store = BrokenStore()
    store.error = error
    app = cart_app(make_manager(Cart, store))
    with client(app) as browser:
        browser.post("/dict")
        cookie = browser.cookies["__Host-session"]
        store.down = True
        with caplog.at_level(logging.ERROR, logger="fastapi_sessions"):
            response = browser.get("/items")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {"detail": "Session store unavailable"}
        assert set_cookies(response) == []
        assert "session store unavailable" in caplog.text
        assert browser.get("/plain").status_code == 200  # routes without the session keep working

        failed_write = browser.post("/dict")  # the session loads from... nowhere: 503 before any write
        assert failed_write.status_code == 503 and set_cookies(failed_write) == []

        store.down = False
        assert browser.cookies["__Host-session"] == cookie
        assert browser.get("/items").json() == [2]  # back without a restart, same session


def test_a_failed_write_is_a_503_and_sets_no_cookie(caplog: pytest.LogCaptureFixture) -> None:
    class WriteFails(BrokenStore):
        FAILING = ("create", "update", "delete")

    store = WriteFails()
    app = cart_app(make_manager(Cart, store))
    with client(app) as browser:
        store.down = True
        with caplog.at_level(logging.ERROR, logger="fastapi_sessions"):
            response = browser.post("/redirect", follow_redirects=False)
        assert response.status_code == 503
        assert set_cookies(response) == []
        assert "saving the session" in caplog.text
        store.down = False
        browser.post("/dict")
        store.down = True
        assert browser.post("/dict").status_code == 503
        store.down = False
        assert browser.get("/items").json() == [2]


def test_a_hanging_store_times_out_into_a_503() -> None:
    class Hangs(MemoryStore):
        in_process = False  # as a network store: the manager's timeout applies

        async def load(self, key: str) -> StoredSession | None:
            import asyncio

            await asyncio.sleep(30)
            raise AssertionError("unreachable")

    app = cart_app(make_manager(Cart, Hangs(), store_timeout=0.2))
    with client(app) as browser:
        browser.post("/dict")
        response = browser.get("/items")
        assert response.status_code == 503


class Profile(AuthSession):
    nickname: str = "anon"


def test_model_drift_is_a_new_session_not_a_500(caplog: pytest.LogCaptureFixture) -> None:
    class Old(SessionModel):
        items: list[str] = []

    store = MemoryStore()
    old_app = FastAPI()
    old_sessions = make_manager(Old, store)
    old_sessions.install(old_app)

    @old_app.post("/put")
    async def put(session: Annotated[Old, Depends(old_sessions)]) -> None:
        session.items.append("not-an-int")

    new_app = cart_app(make_manager(Cart, store))
    with client(old_app) as old_browser:
        old_browser.post("/put")
        cookie = old_browser.cookies["__Host-session"]
    with client(new_app) as browser:
        browser.cookies.set("__Host-session", cookie)
        with caplog.at_level(logging.WARNING, logger="fastapi_sessions"):
            response = browser.get("/items")
        assert response.status_code == 200 and response.json() == []
        assert "no longer validates against Cart" in caplog.text


def test_a_response_object_reused_across_requests_never_carries_a_cookie_along() -> None:
    sessions = make_manager(Cart, MemoryStore())
    app = FastAPI()
    sessions.install(app)
    shared = PlainTextResponse("ok")

    @app.post("/add")
    async def add(session: Annotated[Cart, Depends(sessions)]) -> PlainTextResponse:
        session.items.append(1)
        return shared

    with client(app) as first, client(app) as second:
        [cookie] = set_cookies(first.post("/add"))
        [other] = set_cookies(second.post("/add"))
        assert cookie != other
    assert not any(name == b"set-cookie" for name, _ in shared.raw_headers)


@pytest.mark.anyio
async def test_a_request_leaves_no_reference_cycles_behind() -> None:
    """Cyclic garbage would pile up until a full collection stalls the worker: the p99 of a busy server."""
    import gc

    app = cart_app(make_manager(Cart, MemoryStore()))
    messages: list[Message] = []

    async def request(method: str, path: str, cookie: bytes | None) -> None:
        headers = [(b"host", b"testserver")] + ([(b"cookie", cookie)] if cookie else [])
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            messages.append(message)

        await app(scope, receive, send)

    await request("POST", "/dict", None)
    cookie = dict(messages[0]["headers"])[b"set-cookie"].split(b";")[0]
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            await request("GET", "/items", cookie)
            await request("POST", "/dict", cookie)
        assert gc.collect() == 0
    finally:
        gc.enable()
