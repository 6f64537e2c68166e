"""Time each step fastapi_sessions takes on a session read and write, one step at a time (memory store).

    PYTHONPATH=. taskset -c 1 .venv/bin/python bench/parts.py

Complements ``inproc.py --profile``: cProfile inflates small functions, these are plain wall-clock
timings of the same calls the request path makes, best of five rounds each.
"""

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))

from ours import Counter, sessions

from fastapi_sessions._middleware import _add_vary
from fastapi_sessions._request import RequestSession


def best_us(step: Callable[[], Any], number: int = 20000) -> float:
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            step()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return min(rounds)


async def best_us_async(step: Callable[[], Awaitable[Any]], number: int = 20000) -> float:
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            await step()
        rounds.append((time.perf_counter() - start) / number * 1e6)
    return min(rounds)


def scope_with(cookie: str) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"user-agent", b"bench"), (b"cookie", cookie.encode())]
    return {"type": "http", "headers": headers, "client": ("127.0.0.1", 1), "path": "/read"}


async def main() -> None:
    await sessions.open()
    core = sessions._core  # the parts each request works with
    # One stored session, as /setup leaves it.
    first = RequestSession(core, scope_with(""))
    model = await first.load()
    assert isinstance(model, Counter)
    model.ready = True
    headers = await first.commit()
    cookie = headers[0][1].decode().split(";", 1)[0]
    value = cookie.split("=", 1)[1]
    scope = scope_with(cookie)
    unsigned = sessions.signer.unsign(value)
    assert unsigned is not None
    key = unsigned.key
    stored = await sessions.store.load(key)
    assert stored is not None
    data = stored.data

    async def full_read() -> None:
        request_session = RequestSession(core, scope)
        await request_session.load()
        await request_session.commit()

    async def full_write() -> None:
        request_session = RequestSession(core, scope)
        loaded = await request_session.load()
        loaded.counter += 1  # type: ignore[attr-defined]
        await request_session.commit()

    loaded = RequestSession(core, scope)
    await loaded.load()

    async def store_load() -> None:
        await sessions.store.load(key)

    async def call_store_load() -> None:
        await core.gateway.load(key)

    async def commit_unchanged() -> None:
        await loaded.commit()

    steps: list[tuple[str, float]] = [
        ("whole read: RequestSession + load + commit (no change)", await best_us_async(full_read)),
        ("whole write: load, counter += 1, commit", await best_us_async(full_write)),
        ("RequestSession(core, scope)", best_us(lambda: RequestSession(core, scope))),
        ("SessionTransport.read (find the cookie)", best_us(lambda: core.transport.read(scope["headers"]))),
        ("CookieSigner.unsign", best_us(lambda: sessions.signer.unsign(value))),
        ("store_key (BLAKE2b of the ID)", best_us(lambda: core.signer.store_key(unsigned.session_id))),
        ("MemoryStore.load (dict lookup + json.loads)", await best_us_async(store_load)),
        ("StoreGateway.load (no timeout: in-process store)", await best_us_async(call_store_load)),
        ("SessionPolicy.expiry_reason", best_us(lambda: core.policy.expiry_reason(data))),
        ("Counter.model_validate(data)", best_us(lambda: Counter.model_validate(data))),
        ("meta = {_fields}", best_us(lambda: {n: v for n, v in data.items() if n.startswith("_")})),
        ("RequestSession.commit, nothing changed", await best_us_async(commit_unchanged)),
        ("model.model_dump(mode='json') (inside commit)", best_us(lambda: loaded.model.model_dump(mode="json"))),  # type: ignore[union-attr]
        ("_add_vary", best_us(lambda: _add_vary([(b"content-type", b"application/json")], (b"Cookie",)))),
    ]
    width = max(len(name) for name, _ in steps)
    for name, us in steps:
        print(f"{name:{width}}  {us:7.2f} µs")
    await sessions.close()


if __name__ == "__main__":
    asyncio.run(main())
