"""The PyPI package fastapi-sessions 0.3.2 (abandoned) with its in-memory backend.

It installs the import name ``fastapi_sessions`` too, so this app only runs from its own venv.
"""

from typing import Annotated
from uuid import UUID, uuid4

from common import LIFETIME, SECRET, payload
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.frontends.implementations import CookieParameters, SessionCookie
from fastapi_sessions.session_verifier import SessionVerifier
from pydantic import BaseModel

import fastapi_sessions

assert "site-packages" in fastapi_sessions.__file__, fastapi_sessions.__file__


class SessionData(BaseModel):
    counter: int = 0
    payload: str = ""


class Verifier(SessionVerifier[UUID, SessionData]):
    def __init__(self, backend: InMemoryBackend[UUID, SessionData]) -> None:
        self._backend = backend
        self._exception = HTTPException(status_code=403, detail="invalid session")

    @property
    def identifier(self) -> str:
        return "bench"

    @property
    def backend(self) -> InMemoryBackend[UUID, SessionData]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return True

    @property
    def auth_http_exception(self) -> HTTPException:
        return self._exception

    def verify_session(self, model: SessionData) -> bool:
        return True


cookie = SessionCookie(
    cookie_name="session",
    identifier="bench",
    auto_error=True,
    secret_key=SECRET,
    cookie_params=CookieParameters(max_age=LIFETIME),
)
backend = InMemoryBackend[UUID, SessionData]()
verifier = Verifier(backend)
app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}


@app.get("/setup")
async def setup(response: Response, size: int = 0) -> dict[str, bool]:
    session_id = uuid4()
    await backend.create(session_id, SessionData(payload=payload(size)))
    cookie.attach_to_response(response, session_id)
    return {"ok": True}


@app.get("/read", dependencies=[Depends(cookie)])
async def read(data: Annotated[SessionData, Depends(verifier)]) -> dict[str, int]:
    return {"counter": data.counter}


@app.post("/write")
async def write(
    session_id: Annotated[UUID, Depends(cookie)], data: Annotated[SessionData, Depends(verifier)]
) -> dict[str, int]:
    data.counter += 1
    await backend.update(session_id, data)
    return {"counter": data.counter}
