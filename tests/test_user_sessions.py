"""Per-user session control over HTTP on every store: a "your devices" page, revoking, and limits."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from fastapi_sessions import SessionManager, SessionSettings
from tests.support import (
    SECRET,
    Backend,
    Browser,
    CountingStore,
    FakeClock,
    Harness,
    UserSession,
    assert_no_new_cookie,
    build_app,
    make_manager,
    parsed_cookies,
    run,
    serve,
    serve_together,
)
from tests.support.live_server import live_client, live_server


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness[UserSession]]:
    with serve(backend, UserSession) as value:
        yield value


AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", "Mozilla/5.0 (iPhone) Safari/605.1", "curl/8.5.0")


def three_devices(h: Harness[UserSession], uid: str = "alice") -> list[Browser]:
    browsers = []
    for agent in AGENTS:
        browsers.append(h.login(uid, agent))
        h.clock.advance(10)
    return browsers


def test_list_sessions_shows_each_device(h: Harness[UserSession]) -> None:
    start = h.clock.now
    browsers = three_devices(h)
    h.login("bob")

    infos = h.list_sessions("alice")
    assert [info.user_agent for info in infos] == list(AGENTS)
    assert [info.created_at for info in infos] == [datetime.fromtimestamp(start + 10 * i, UTC) for i in range(3)]
    assert all(info.last_seen == info.created_at for info in infos)
    assert {info.ip for info in infos} == {"testclient"}
    handles = [info.handle for info in infos]
    assert len(set(handles)) == 3

    # Handles name sessions; they are not tokens.
    cookies = [browser.cookie for browser in browsers]
    assert all(cookie is not None for cookie in cookies)
    assert not any(handle in str(cookie) for handle in handles for cookie in cookies)
    for handle in handles:
        for forged in (handle, h.sessions.signer.sign(handle)):
            response = h.browser().replay("GET", "/me", forged)
            assert response.status_code == 401
            assert_no_new_cookie(response)

    # Over HTTP: each device sees the list, with itself marked.
    h.clock.advance(120)
    listing = browsers[1].get("/devices").json()
    assert [entry["handle"] for entry in listing] == handles
    assert [entry["current"] for entry in listing] == [False, True, False]
    assert [entry["last_seen"] for entry in listing] == [start, start + 10, start + 20]
    # The listing request itself counted as activity (rolling, past touch_after).
    seen = [info.last_seen.timestamp() for info in h.list_sessions("alice")]
    assert seen == [start, h.clock.now, start + 20]
    assert browsers[1].get("/handle").json()["handle"] == handles[1]


def test_revoke_one_session(h: Harness[UserSession]) -> None:
    browsers = three_devices(h)
    handles = [info.handle for info in h.list_sessions("alice")]
    response = browsers[0].post("/devices/revoke", params={"handle": handles[2]})
    assert response.json() == {"revoked": True}
    assert browsers[2].get("/me").status_code == 401
    assert browsers[0].get("/me").status_code == 200
    assert browsers[1].get("/me").status_code == 200
    assert [info.handle for info in h.list_sessions("alice")] == handles[:2]
    # Revoking again, or revoking another user's session by its handle, does nothing.
    assert browsers[0].post("/devices/revoke", params={"handle": handles[2]}).json() == {"revoked": False}
    bob = h.login("bob")
    assert bob.post("/devices/revoke", params={"handle": handles[0]}).json() == {"revoked": False}
    assert browsers[0].get("/me").status_code == 200


def test_log_out_other_devices(h: Harness[UserSession]) -> None:
    browsers = three_devices(h)
    bob = h.login("bob")
    assert browsers[1].post("/devices/revoke-others").json() == {"revoked": 2}
    assert [browser.get("/me").status_code for browser in browsers] == [401, 200, 401]
    assert bob.get("/me").status_code == 200
    (only,) = h.list_sessions("alice")
    assert only.handle == browsers[1].get("/handle").json()["handle"]


REGENERATIONS = 30


@pytest.mark.anyio
@pytest.mark.slow
async def test_log_out_other_devices_while_one_keeps_regenerating(backend: Backend) -> None:
    """Device A logs out the others while device B regenerates again and again: every cookie B held is dead."""
    sessions = make_manager(UserSession, backend.make_store(), https_only=False)
    with live_server(build_app(sessions)) as url:
        for trial in range(3):
            uid = f"alice{trial}"
            async with live_client(url) as a, live_client(url) as b:
                for device in (a, b):
                    assert (await device.post("/login", params={"uid": uid})).json()["user_id"] == uid
                held = [b.cookies["session"]]
                regenerating = asyncio.Event()

                async def keep_regenerating(
                    b: "httpx.AsyncClient" = b, held: list[str] = held, go: asyncio.Event = regenerating
                ) -> None:
                    try:
                        for round_ in range(REGENERATIONS):
                            response = await b.post("/regenerate")
                            assert response.status_code == 200, response.text
                            if response.json()["user_id"] is None:  # logged out: the cookie it sent was dead
                                return
                            held.append(b.cookies["session"])
                            if round_ == 1:
                                go.set()
                    finally:
                        go.set()

                async def log_out_others(a: "httpx.AsyncClient" = a, go: asyncio.Event = regenerating) -> None:
                    await go.wait()
                    response = await a.post("/devices/revoke-others")
                    assert response.status_code == 200, response.text

                await asyncio.gather(keep_regenerating(), log_out_others())
                for cookie in held:
                    async with live_client(url, cookie) as replay:
                        assert (await replay.get("/me")).status_code == 401, f"trial {trial}: a cookie of B still works"
                assert (await a.get("/me")).json()["user_id"] == uid


def test_revoke_all_sessions(h: Harness[UserSession]) -> None:
    browsers = three_devices(h)
    assert h.revoke_all("alice") == 3
    assert [browser.get("/me").status_code for browser in browsers] == [401, 401, 401]
    assert h.list_sessions("alice") == []


def test_limit_evicts_the_oldest(backend: Backend) -> None:
    with serve(backend, UserSession, max_sessions_per_user=2, limit_policy="evict_oldest") as h:
        browsers = three_devices(h)
        assert [browser.get("/me").status_code for browser in browsers] == [401, 200, 200]
        assert [info.user_agent for info in h.list_sessions("alice")] == list(AGENTS[1:])
        fourth = h.login("alice", "fourth")
        assert [browser.get("/me").status_code for browser in [*browsers, fourth]] == [401, 401, 200, 200]
        assert h.login("bob").get("/me").status_code == 200  # other users are not counted


def test_limit_refuses_a_third_login(backend: Backend) -> None:
    with serve(backend, UserSession, max_sessions_per_user=2, limit_policy="refuse") as h:
        first, second = h.login("alice", AGENTS[0]), h.login("alice", AGENTS[1])
        third = h.browser(AGENTS[2])
        response = third.post("/login", params={"uid": "alice"})
        assert response.status_code == 409
        assert "SESSION_MAX_SESSIONS_PER_USER=2" in response.json()["detail"]
        assert parsed_cookies(response) == []
        assert third.cookie is None
        assert third.get("/me").status_code == 401
        assert [first.get("/me").status_code, second.get("/me").status_code] == [200, 200]
        # Logging in again on a device that holds one of the two sessions is not a new session.
        assert first.post("/login", params={"uid": "alice"}).status_code == 200
        assert len(h.list_sessions("alice")) == 2
        # After a logout elsewhere, there is room again.
        oldest = h.list_sessions("alice")[0].handle
        assert run(h.client, lambda: h.sessions.revoke_session("alice", oldest))
        assert third.post("/login", params={"uid": "alice"}).status_code == 200


HOSTILE_IDS = [
    "alice",
    "ALICE",
    "alice ",
    "\u00e5lice",
    "ali\x00ce",
    "a*",
    "*",
    "?",
    "a?ice",
    "%",
    "a%",
    "_",
    "al_ce",
    ".*",
    "[a-z]*",
    '{"$ne": null}',
]


def test_user_ids_are_matched_exactly(h: Harness[UserSession]) -> None:
    browsers = {uid: h.login(uid) for uid in HOSTILE_IDS}
    for uid in HOSTILE_IDS:
        infos = h.list_sessions(uid)
        assert len(infos) == 1, uid
        assert infos[0].handle == browsers[uid].get("/handle").json()["handle"]
    for uid in ("al", "ali", "alic", "", "alice*", "Alice", '{"$regex": ".*"}', '{"$gt": ""}'):
        assert h.list_sessions(uid) == [], uid
        assert h.revoke_all(uid) == 0

    for uid in ("*", "%", '{"$ne": null}', ".*"):
        assert h.revoke_all(uid) == 1
        assert browsers[uid].get("/me").status_code == 401
    survivors = [uid for uid in HOSTILE_IDS if uid not in ("*", "%", '{"$ne": null}', ".*")]
    for uid in survivors:
        assert browsers[uid].get("/me").json()["user_id"] == uid


def test_devices_page_survives_a_retired_encryption_key(backend: Backend) -> None:
    pytest.importorskip("cryptography")
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    store = backend.make_store()
    shared = CountingStore(store, lifecycle=False)
    clock = FakeClock()

    def manager(key: str) -> SessionManager[UserSession]:
        settings = SessionSettings(secret_key=SECRET, encryption_keys=[key])
        return SessionManager(UserSession, settings=settings, store=shared, clock=clock)

    before, after = manager(old_key), manager(new_key)
    with serve_together(store, {"/before": build_app(before), "/after": build_app(after)}) as test_client:
        stale = Browser(test_client, before.cookie_name, "old-device")
        stale.post("/before/login", params={"uid": "alice"})
        current = Browser(test_client, after.cookie_name, "new-device")
        current.post("/after/login", params={"uid": "alice"})

        response = current.get("/after/devices")
        assert response.status_code == 200
        assert [entry["user_agent"] for entry in response.json()] == ["new-device"]
        assert stale.get("/after/me").status_code == 401
        # No request can load the unreadable session, so listing removed it from the store and the index.
        assert len(run(test_client, lambda: shared.user_keys("alice"))) == 1
        assert run(test_client, lambda: after.revoke_all_sessions("alice")) == 1
