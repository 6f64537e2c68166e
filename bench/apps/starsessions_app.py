"""starsessions 2.2.1 on its memory store or its Redis store (BENCH_STORE)."""

from common import LIFETIME, REDIS_URL, STORE, payload
from fastapi import FastAPI, Request
from redis.asyncio import Redis
from starsessions import InMemoryStore, SessionMiddleware, SessionStore, load_session
from starsessions.stores.redis import RedisStore


def make_store() -> SessionStore:
    if STORE == "memory":
        return InMemoryStore()
    if STORE == "redis":
        return RedisStore(connection=Redis.from_url(REDIS_URL), prefix="starsessions.")
    raise SystemExit(f"unknown BENCH_STORE {STORE!r}")


app = FastAPI()
app.add_middleware(SessionMiddleware, store=make_store(), lifetime=LIFETIME, cookie_https_only=False)


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(request: Request, size: int = 0) -> dict[str, bool]:
    await load_session(request)
    request.session["counter"] = 0
    request.session["payload"] = payload(size)
    return {"ok": True}


@app.get("/read")
async def read(request: Request) -> dict[str, int]:
    await load_session(request)
    return {"counter": request.session.get("counter", 0)}


@app.post("/write")
async def write(request: Request) -> dict[str, int]:
    await load_session(request)
    request.session["counter"] = request.session.get("counter", 0) + 1
    return {"counter": request.session["counter"]}
