"""A real uvicorn server on a thread of its own, and `Hold`, which parks requests where a race needs them.

The server listens on a socket bound to port 0 before it starts, so parallel test workers never race
for a port. It is stopped and its thread joined however the test ends.
"""

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

# A request a test sends; called with ``params`` naming the hold it parks in.
Send = Callable[..., Coroutine[Any, Any, httpx.Response]]

# Longer than any test here takes: no operation may come near it, so reaching it is a failure.
DEADLINE = 10.0


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@contextmanager
def live_server(app: FastAPI, holds: "Holds | None" = None, **options: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port; yields its base URL.

    ``options`` go to `uvicorn.Config`: with ``ssl_certfile`` and ``ssl_keyfile`` it serves https.

    Keep-alive outlasts the test, so no connection is closed by the server while a client may still
    reuse it. On the way out every hold in ``holds`` is released first, so a failed test leaves no
    request parked; one still running after that is cancelled after a few seconds.
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=60,
        timeout_graceful_shutdown=3,
        **options,
    )
    server = _Server(config)

    def run() -> None:
        try:
            server.run(sockets=[listener])
        finally:
            server.ready.set()

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(DEADLINE) or not server.started:
            raise RuntimeError(f"uvicorn did not start on port {port} (see the log above)")
        scheme = "https" if options.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        if holds is not None:
            holds.release_all()
        server.should_exit = True
        thread.join(DEADLINE)
        listener.close()
        assert not thread.is_alive(), f"uvicorn on port {port} did not stop within {DEADLINE} s"


def live_client(base_url: str, cookie: str | None = None) -> httpx.AsyncClient:
    """A client of a live server, sending the session cookie ``cookie`` if given."""
    http = httpx.AsyncClient(base_url=base_url, timeout=DEADLINE, limits=httpx.Limits(max_connections=32))
    if cookie is not None:
        http.cookies.set("session", cookie)
    return http


class Hold:
    """Parks requests after they loaded their session, until the test releases them.

    A route calls `pause` (on the server's loop); the test awaits `loaded` (on its own loop), does
    what must happen while those requests hold a stale session, then calls `release`. Both loops
    are woken through ``call_soon_threadsafe``: no polling.
    """

    def __init__(self) -> None:
        self._test_loop = asyncio.get_running_loop()
        self._arrived = asyncio.Semaphore(0)
        self._lock = threading.Lock()
        self._released = False
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def pause(self) -> None:
        """Called by a route: report that this request has loaded its session, then wait for `release`."""
        event = asyncio.Event()
        with self._lock:
            if not self._released:
                self._waiting.append((asyncio.get_running_loop(), event))
            else:
                event.set()
        self._test_loop.call_soon_threadsafe(self._arrived.release)
        try:
            await asyncio.wait_for(event.wait(), DEADLINE)
        except TimeoutError:
            raise AssertionError(f"a held request was not released within {DEADLINE} s") from None

    async def loaded(self, count: int = 1) -> None:
        """Wait until ``count`` more requests are parked in `pause`."""
        for arrived in range(count):
            try:
                await asyncio.wait_for(self._arrived.acquire(), DEADLINE)
            except TimeoutError:
                raise AssertionError(f"{arrived} of {count} requests reached the hold within {DEADLINE} s") from None

    def release(self) -> None:
        """Let every parked request, and every later one, go on to commit."""
        with self._lock:
            self._released = True
            waiting, self._waiting = self._waiting, []
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # that server's loop has closed: nothing waits any more
                loop.call_soon_threadsafe(event.set)


class Holds:
    """The holds of one test, by name: a route parks a request in ``holds[name]`` when asked to."""

    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}

    @asynccontextmanager
    async def parked(
        self, *sends: Callable[..., Coroutine[Any, Any, httpx.Response]]
    ) -> AsyncIterator[list[httpx.Response]]:
        """Send requests that park after loading their session; the body runs while they wait.

        Each of ``sends`` (e.g. ``partial(http.post, "/incr")``) is called with ``params`` naming
        a fresh hold, which the route must pass to `pause`. Once all have loaded, the body runs;
        then they are released, and the list yielded holds their responses when the block ends.
        If anything fails, the requests still in flight are cancelled.
        """
        name = f"hold-{len(self._holds)}"
        hold = self._holds[name] = Hold()
        responses: list[httpx.Response] = []
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(send(params={"hold": name})) for send in sends]
            await hold.loaded(len(tasks))
            yield responses
            hold.release()
        responses.extend(task.result() for task in tasks)

    async def pause(self, name: str | None) -> None:
        """Park this request in the hold ``name``; no name, no pause."""
        if name is not None:
            await self._holds[name].pause()

    def release_all(self) -> None:
        for hold in self._holds.values():
            hold.release()
