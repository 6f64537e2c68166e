"""Starlette's SessionMiddleware: the whole session in a signed cookie."""

from common import LIFETIME, SECRET, payload
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=SECRET, max_age=LIFETIME, https_only=False)


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(request: Request, size: int = 0) -> dict[str, bool]:
    request.session["counter"] = 0
    request.session["payload"] = payload(size)
    return {"ok": True}


@app.get("/read")
async def read(request: Request) -> dict[str, int]:
    return {"counter": request.session.get("counter", 0)}


@app.post("/write")
async def write(request: Request) -> dict[str, int]:
    request.session["counter"] = request.session.get("counter", 0) + 1
    return {"counter": request.session["counter"]}
