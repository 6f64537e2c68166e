"""fastapi_sessions (this project) on the store named by BENCH_STORE: memory, redis or postgres.

Variants for bench/variants.py: BENCH_LISTENER=1 registers a lifecycle listener that does nothing,
BENCH_OTEL=1 gives the manager OpenTelemetry SDK providers (spans made but not exported, metrics
aggregated in memory). For bench/tail.py: BENCH_GC_FREEZE=1 moves every object alive once the app
has started into the collector's permanent generation (``gc.freeze()``), as docs/deployment.md advises.
"""

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from common import LIFETIME, POSTGRES_URL, REDIS_URL, SECRET, STORE, payload
from fastapi import Depends, FastAPI

import fastapi_sessions
from fastapi_sessions import SessionManager, SessionModel, SessionSettings
from fastapi_sessions.stores import MemoryStore, SessionStore, store_from_url

assert "site-packages" not in fastapi_sessions.__file__, fastapi_sessions.__file__


class Counter(SessionModel):
    ready: bool = False
    counter: int = 0
    payload: str = ""


def make_store() -> SessionStore:
    if STORE == "memory":
        return MemoryStore(max_entries=2_000_000)
    if STORE == "redis":
        return store_from_url(REDIS_URL)
    if STORE == "postgres":
        return store_from_url(POSTGRES_URL)
    raise SystemExit(f"unknown BENCH_STORE {STORE!r}")


settings = SessionSettings(
    secret_key=SECRET,
    https_only=False,
    max_age=LIFETIME,
    max_data_bytes=1024 * 1024,
    store_url="memory://",
)
telemetry: dict[str, Any] = {}
if os.environ.get("BENCH_OTEL") == "1":
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    telemetry = {"tracer_provider": TracerProvider(), "meter_provider": MeterProvider([InMemoryMetricReader()])}
sessions = SessionManager(Counter, settings=settings, store=make_store(), **telemetry)
if os.environ.get("BENCH_LISTENER") == "1":
    sessions.add_listener("created", lambda event: None)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.collect()
        gc.freeze()
    yield


app = FastAPI(lifespan=lifespan)
sessions.install(app)
Session = Annotated[Counter, Depends(sessions)]


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(session: Session, size: int = 0) -> dict[str, bool]:
    session.ready = True
    session.counter = 0
    session.payload = payload(size)
    return {"ok": True}


@app.get("/read")
async def read(session: Session) -> dict[str, int]:
    return {"counter": session.counter}


@app.post("/write")
async def write(session: Session) -> dict[str, int]:
    session.counter += 1
    return {"counter": session.counter}
