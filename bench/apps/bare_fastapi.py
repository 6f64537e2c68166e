"""The baseline: the same routes with no sessions at all."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(size: int = 0) -> dict[str, bool]:
    return {"ok": True}


@app.get("/read")
async def read() -> dict[str, int]:
    return {"counter": 0}


@app.post("/write")
async def write() -> dict[str, int]:
    return {"counter": 1}
