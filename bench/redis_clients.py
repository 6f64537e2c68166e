"""Redis clients side by side: the store's own RespClient, redis-py's asyncio client, and coredis.

Run by ``bench/run.py`` (``bench/run --only clients``) with the project's Python pinned to the server's
core, against the benchmark's own redis-server on the other core. Prints one JSON object on stdout.

    python bench/redis_clients.py --url redis://127.0.0.1:PORT/5 [--seconds 1.5] [--rounds 2]

Each client runs the same work, in interleaved rounds (the best round of each cell is kept):

- ``load``: `RedisStore.load` of one session (one HGETALL), as a request that reads its session does;
- ``update``: `RedisStore.update` of two fields of it (one EVALSHA of the update script), as a write does;
- ``get``: the client's own ``GET`` of a short string, no store around it: the client's cost per command.

each from 1 task and from 32 concurrent tasks (the benchmark's 32 HTTP connections). RespClient and
redis-py run under `RedisStore.from_url` (``?driver=builtin``, ``?driver=redis-py``); coredis, which the
store does not build from a URL, runs under `RedisStore` through a small adapter below that offers the
commands the store sends.
"""

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi_sessions.stores.redis import RedisStore

WORKLOADS = ("load", "update", "get")
KEY = "bench-session-key-0123456789abcdef"
TTL = 3600.0
SESSION = {
    "ready": True,
    "counter": 0,
    "payload": "",
    "_created": 1796000000.0,
    "_seen": 1796000000.0,
    "_ip": "127.0.0.1",
    "_agent": "bench",
}


class CoredisCommands:
    """A coredis client behind the commands `RedisStore` sends (its `RedisCommands`), for this comparison."""

    def __init__(self, client: Any) -> None:
        import coredis.exceptions

        self.client = client
        self._no_script = coredis.exceptions.NoScriptError

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise NotImplementedError("the adapter offers the store's named commands only")

    def hgetall(self, name: str) -> Any:
        return self.client.hgetall(name)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self.client.evalsha(sha, keys_and_args[:numkeys], keys_and_args[numkeys:])
        except self._no_script as exc:
            raise NoScriptError(str(exc)) from exc

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.client.eval(script, keys_and_args[:numkeys], keys_and_args[numkeys:])

    def script_load(self, script: str) -> Any:
        return self.client.script_load(script)

    def delete(self, *names: str) -> Any:
        return self.client.delete(names)

    def srem(self, name: str, *values: str) -> Any:
        return self.client.srem(name, values)

    def smembers(self, name: str) -> Any:
        return self.client.smembers(name)

    def pipeline(self, transaction: bool = False) -> Any:
        raise NotImplementedError("not needed here: load_many is not measured")

    async def aclose(self) -> None:
        pass  # the coredis client closes with its context, which the benchmark holds


@contextlib.asynccontextmanager
async def clients(url: str) -> AsyncIterator[dict[str, tuple[RedisStore, Callable[[], Awaitable[Any]]]]]:
    """Each client, connected, as (a store on it, its own GET of the benchmark's string key)."""
    separator = "&" if "?" in url else "?"
    builtin = RedisStore.from_url(f"{url}{separator}driver=builtin")
    redis_py = RedisStore.from_url(f"{url}{separator}driver=redis-py")
    found = {
        "builtin": (builtin, lambda: builtin.client.execute_command("GET", "bench-string")),
        "redis-py": (redis_py, lambda: redis_py.client.get("bench-string")),  # type: ignore[attr-defined]
    }
    async with contextlib.AsyncExitStack() as stack:
        try:
            import coredis
        except ImportError:
            pass
        else:
            host, _, rest = url.removeprefix("redis://").partition(":")
            port, _, db = rest.partition("/")
            raw = await stack.enter_async_context(coredis.Redis(host, int(port), int(db.split("?")[0] or 0)))
            found["coredis"] = (RedisStore(CoredisCommands(raw)), lambda: raw.get("bench-string"))
        for store, _ in found.values():
            await store.open()
            stack.push_async_callback(store.close)
        await builtin.client.execute_command("SET", "bench-string", "x" * 16)
        await builtin.create(KEY, SESSION, ttl=TTL, user_id=None)
        yield found


def operation(store: RedisStore, get: Callable[[], Awaitable[Any]], workload: str) -> Callable[[], Awaitable[Any]]:
    if workload == "load":
        return lambda: store.load(KEY)
    if workload == "update":
        changes = {"counter": 1, "_seen": 1796000001.0}
        return lambda: store.update(KEY, changes, ttl=TTL)
    return get


async def measure(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> dict[str, float]:
    """Operations per second, CPU µs per operation (this thread), and latency percentiles in µs."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        clock = time.perf_counter
        record = latencies.append
        while (start := clock()) < deadline:
            await call()
            record(clock() - start)

    started, cpu = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "ops_s": len(latencies) / elapsed,
        "cpu_us": cpu / len(latencies) * 1e6,
        "p50_us": cuts[49] * 1e6,
        "p99_us": cuts[98] * 1e6,
    }


def versions() -> dict[str, str]:
    found = {}
    for name in ("redis", "hiredis", "coredis"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    from redis.utils import HIREDIS_AVAILABLE

    found["redis-py parser"] = "hiredis" if HIREDIS_AVAILABLE else "Python"
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="a redis:// URL of a database the benchmark may write")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each cell keeps its best")
    parser.add_argument("--concurrency", default="1,32", help="concurrent tasks, comma-separated")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",") if level]
    best: dict[tuple[str, str, int], dict[str, float]] = {}
    async with clients(args.url) as found:
        for round_index in range(args.rounds):
            for name, (store, get) in found.items():
                for workload in WORKLOADS:
                    call = operation(store, get, workload)
                    for concurrency in levels:
                        if round_index == 0:
                            await measure(call, concurrency, min(0.3, args.seconds))  # warm-up
                        result = await measure(call, concurrency, args.seconds)
                        cell = (name, workload, concurrency)
                        if cell not in best or result["ops_s"] > best[cell]["ops_s"]:
                            best[cell] = result
        await found["builtin"][0].client.execute_command("DEL", "bench-string", found["builtin"][0].session_key(KEY))
    cells = [
        {"client": name, "workload": workload, "concurrency": concurrency, **result}
        for (name, workload, concurrency), result in best.items()
    ]
    print(json.dumps({"versions": versions(), "cells": cells}))


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
