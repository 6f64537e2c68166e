"""The floor of any session API built on Depends: bare FastAPI plus a no-op dependency of the same shape.

The dependency takes the request (``HTTPConnection``) and returns a constant, as a session
dependency does before it does any work, so the rows of this app show FastAPI's own cost of
resolving such a dependency.
"""

from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection


class NoSession:
    async def __call__(self, request: HTTPConnection) -> int:
        return 0


no_session = NoSession()
Value = Annotated[int, Depends(no_session)]
app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(size: int = 0) -> dict[str, bool]:
    return {"ok": True}


@app.get("/read")
async def read(value: Value) -> dict[str, int]:
    return {"counter": value}


@app.post("/write")
async def write(value: Value) -> dict[str, int]:
    return {"counter": value + 1}
