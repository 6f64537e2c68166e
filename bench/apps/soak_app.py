"""The app `bench/soak` drives: fastapi_sessions with a counter, a dict and a list, logins and revocations.

The store comes from ``SESSION_STORE_URL`` like any app's, except with ``SOAK_STORE=mongodb``: then the
store is the in-process MongoDB fake (mongomock-motor), built here, so it needs one worker.
"""

import os
from typing import Annotated

from fastapi import Depends, FastAPI

import fastapi_sessions
from fastapi_sessions import AuthSession, Counter, SessionManager
from fastapi_sessions.stores import SessionStore

assert "site-packages" not in fastapi_sessions.__file__, fastapi_sessions.__file__


class SoakSession(AuthSession):
    """A counter (`Counter`: concurrent increments add up), a dict with one key per client, and a list.

    Every client appends to the list.
    """

    hits: Counter = 0
    counts: dict[str, int] = {}
    items: list[str] = []


def make_store() -> SessionStore | None:
    if os.environ.get("SOAK_STORE") != "mongodb":
        return None  # the store SESSION_STORE_URL names
    from mongomock_motor import AsyncMongoMockClient

    from fastapi_sessions.stores.mongodb import MongoStore

    return MongoStore(AsyncMongoMockClient(), database="soak")


sessions = SessionManager(SoakSession, store=make_store())
app = FastAPI()
sessions.install(app)
Session = Annotated[SoakSession, Depends(sessions)]


@app.get("/read")
async def read(session: Session) -> dict[str, object]:
    return {"hits": session.hits, "user": session.user_id}


@app.post("/write")
async def write(session: Session, client: str, token: str) -> dict[str, int]:
    session.hits += 1
    session.counts[client] = session.counts.get(client, 0) + 1
    session.items.append(token)
    return {"hits": session.hits, "mine": session.counts[client]}


@app.get("/state")
async def state(session: Session) -> dict[str, object]:
    return {"user": session.user_id, "hits": session.hits, "counts": session.counts, "items": session.items}


@app.post("/login")
async def login(session: Session, user: str) -> dict[str, str]:
    session.login(user)
    return {"user": user}


@app.post("/logout")
async def logout(session: Session) -> dict[str, bool]:
    session.logout()
    return {"ok": True}


@app.post("/regenerate")
async def regenerate(session: Session) -> dict[str, bool]:
    session.regenerate()
    return {"ok": True}


@app.post("/revoke-others")
async def revoke_others(session: Session) -> dict[str, int]:
    """Sign out every other device of the logged-in user (a no-op for an anonymous visitor)."""
    if session.user_id is None:
        return {"revoked": 0}
    return {"revoked": await sessions.revoke_all_sessions(session.user_id, keep=session.handle)}
