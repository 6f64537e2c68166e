"""Drive one benchmark app as a bare ASGI callable, with no server and no network.

Run by ``bench/run.py`` with the Python of the app's own venv (so each peer imports its own
packages), pinned to one core. Prints one JSON object on stdout.

    python bench/inproc.py MODULE [--routes read,write,bare] [--sizes 100,10000] [--budget 1.0]
    python bench/inproc.py MODULE --setup-only [--size N]          # print the session cookie
    python bench/inproc.py MODULE --cookie 'session=...' --routes read
    python bench/inproc.py MODULE --profile read [--iterations 20000]  # cProfile, top functions

MODULE is a module of bench/apps (``ours``, ``starlette_cookie``, ...) exposing ``app``.
"""

import argparse
import asyncio
import cProfile
import importlib
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
sys.path.insert(0, APPS)

ASGIApp = Callable[..., Awaitable[None]]
ROUTES = {"bare": ("GET", "/bare"), "read": ("GET", "/read"), "write": ("POST", "/write")}


class Lifespan:
    """Runs the app's startup before the loop and its shutdown after, as a server would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        async def receive() -> dict[str, Any]:
            return await self.inbox.get()

        async def send(message: dict[str, Any]) -> None:
            await self.outbox.put(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, receive, send))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"startup failed: {message}")

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        if self.task is not None:
            await self.task


async def call(app: ASGIApp, method: str, path: str, query: bytes, cookie: str | None) -> tuple[int, list[Any], bytes]:
    """One request through the app; returns status, headers and body."""
    headers = [(b"host", b"bench"), (b"user-agent", b"bench")]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    if method == "POST":
        headers.append((b"content-length", b"0"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent_request = False
    status = 0
    response_headers: list[Any] = []
    body = bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # a client that stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, response_headers, bytes(body)


def cookie_from(headers: list[Any]) -> str:
    """The ``Cookie`` header a browser would send back after these ``Set-Cookie`` headers."""
    pairs = []
    for name, value in headers:
        if name.lower() == b"set-cookie":
            pairs.append(value.decode("latin-1").split(";", 1)[0])
    return "; ".join(pairs)


async def setup(app: ASGIApp, size: int) -> str:
    status, headers, body = await call(app, "GET", "/setup", f"size={size}".encode(), None)
    if status != 200:
        raise RuntimeError(f"/setup answered {status}: {body[:200]!r}")
    return cookie_from(headers)


async def time_route(app: ASGIApp, route: str, cookie: str | None, budget: float) -> dict[str, Any]:
    """Microseconds per request of one route, wall-clock and CPU: the best of five rounds of ``budget / 5`` s each.

    The CPU time (of this thread) leaves out the time the process waits for its store and the time
    other processes hold the core, so it is the steadier measure of the library's own cost.
    """
    method, path = ROUTES[route]
    status, _, body = await call(app, method, path, b"", cookie)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
    for _ in range(200):  # warm-up
        await call(app, method, path, b"", cookie)
    rounds = []
    cpu_rounds = []
    for _ in range(5):
        count = 0
        start, cpu_start = time.perf_counter(), time.thread_time()
        deadline = start + budget / 5
        now = start
        while now < deadline:
            for _ in range(50):
                await call(app, method, path, b"", cookie)
            count += 50
            now = time.perf_counter()
        rounds.append((now - start) / count * 1e6)
        cpu_rounds.append((time.thread_time() - cpu_start) / count * 1e6)
    return {
        "us": min(rounds),
        "cpu_us": min(cpu_rounds),
        "rounds": rounds,
        "body": body.decode("utf-8", "replace")[:80],
    }


async def profile_route(app: ASGIApp, route: str, cookie: str | None, iterations: int, top: int) -> str:
    method, path = ROUTES[route]
    for _ in range(200):
        await call(app, method, path, b"", cookie)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        await call(app, method, path, b"", cookie)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats("fastapi_sessions", top)
    return out.getvalue()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module")
    parser.add_argument("--routes", default="bare,read,write")
    parser.add_argument("--sizes", default="", help="also time /read with sessions of these sizes (bytes)")
    parser.add_argument("--size", type=int, default=0, help="payload size of the session used for --routes")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds spent timing each route")
    parser.add_argument("--cookie", help="use this session instead of creating one")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--profile", metavar="ROUTE")
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    app = importlib.import_module(args.module).app
    result: dict[str, Any] = {"routes": {}, "sizes": {}}
    async with Lifespan(app):
        cookie = args.cookie if args.cookie is not None else await setup(app, args.size)
        if args.setup_only:
            result["cookie"] = cookie
        elif args.profile:
            print(await profile_route(app, args.profile, cookie, args.iterations, args.top))
            return
        else:
            for route in filter(None, args.routes.split(",")):
                result["routes"][route] = await time_route(app, route, cookie, args.budget)
            for size in [int(item) for item in args.sizes.split(",") if item]:
                sized = await setup(app, size)
                result["sizes"][str(size)] = await time_route(app, "read", sized, args.budget)
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
