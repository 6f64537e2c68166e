"""Lifecycle events over HTTP on every store: what each step of a session's life tells its listeners."""

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from fastapi_sessions import (
    AuthSession,
    MemoryStore,
    SessionCreated,
    SessionDestroyed,
    SessionEvent,
    SessionExpired,
    SessionManager,
    SessionRegenerated,
    SessionRejected,
    SessionRevoked,
)
from fastapi_sessions.signing import new_session_id
from tests.backends._corrupt import FUTURE, Corruptions
from tests.support import (
    Backend,
    Harness,
    UserSession,
    build_app,
    client,
    key_of,
    login_app,
    run,
    serve,
    settings,
)

AGENT = "test-browser/1.0"


class Recorder:
    """Listens to every event, the sync way (run in a worker thread)."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)

    def take(self) -> list[SessionEvent]:
        taken, self.events = self.events, []
        return taken


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness[UserSession]]:
    with serve(backend, UserSession, max_sessions_per_user=2) as value:
        yield value


@pytest.fixture
def recorder(h: Harness[UserSession]) -> Recorder:
    recorder = Recorder()
    h.sessions.add_listener(SessionEvent, recorder)
    return recorder


def request_of(event: SessionEvent) -> tuple[str | None, str | None, str | None, str | None]:
    return event.method, event.path, event.client_ip, event.user_agent


def test_login_privilege_change_step_up_and_logout(h: Harness[UserSession], recorder: Recorder) -> None:
    browser = h.browser()
    assert browser.get("/read").status_code == 200
    assert recorder.take() == []  # a new, empty session is never stored

    browser.get("/csrf")  # stores an anonymous session
    (created,) = recorder.take()
    assert isinstance(created, SessionCreated)
    assert browser.cookie is not None
    anonymous = key_of(h.sessions, browser.cookie)
    assert (created.handle, created.user_id, created.reason, created.time) == (anonymous, None, None, h.clock.now)
    assert request_of(created) == ("GET", "/csrf", "testclient", AGENT)

    h.clock.advance(5)
    browser.post("/login", params={"uid": "alice"})
    (login,) = recorder.take()
    assert isinstance(login, SessionRegenerated)
    alice = key_of(h.sessions, browser.cookie)
    assert (login.handle, login.previous_handle, login.user_id, login.reason) == (alice, anonymous, "alice", "login")
    assert (login.time, login.at.timestamp()) == (h.clock.now, h.clock.now)
    assert request_of(login) == ("POST", "/login", "testclient", AGENT)

    assert browser.get("/me").status_code == 200
    assert recorder.take() == []  # a read

    browser.post("/roles/add", params={"role": "admin"})
    browser.post("/reauth")
    events = recorder.take()
    assert [(type(event), event.reason, event.user_id) for event in events] == [
        (SessionRegenerated, "privilege_change", "alice"),
        (SessionRegenerated, "step_up", "alice"),
    ]
    assert events[1].handle == key_of(h.sessions, browser.cookie)

    last = browser.cookie
    browser.post("/logout")
    (logout,) = recorder.take()
    assert isinstance(logout, SessionDestroyed)
    assert (logout.handle, logout.user_id, logout.reason) == (key_of(h.sessions, last), "alice", "logout")


def test_a_login_on_a_new_browser_and_a_switch_of_user(h: Harness[UserSession], recorder: Recorder) -> None:
    browser = h.login("alice")
    (created,) = recorder.take()
    assert isinstance(created, SessionCreated) and (created.user_id, created.reason) == ("alice", "login")
    assert created.handle == key_of(h.sessions, browser.cookie or "")

    old = created.handle
    browser.post("/switch-user", params={"uid": "bob"})
    ended, began = recorder.take()
    assert isinstance(ended, SessionDestroyed) and (ended.handle, ended.user_id) == (old, "alice")
    assert isinstance(began, SessionCreated) and (began.user_id, began.reason) == ("bob", "login")
    assert began.handle == key_of(h.sessions, browser.cookie or "")


def test_rejected_cookies(h: Harness[UserSession], recorder: Recorder, backend: Backend) -> None:
    browser = h.browser()
    name = h.sessions.cookie_name
    assert browser.replay("GET", "/read", "not-a-signed-cookie").status_code == 200
    unknown = new_session_id()
    browser.replay("GET", "/read", h.sessions.signer.sign(unknown))
    browser.get("/read", headers={"cookie": f"{name}=a; {name}=b"})
    events = recorder.take()
    assert [(type(event), event.reason, event.handle) for event in events] == [
        (SessionRejected, "bad_signature", None),
        (SessionRejected, "unknown_id", h.sessions.signer.store_key(unknown)),
        (SessionRejected, "several_cookies", None),
    ]
    assert all(request_of(event) == ("GET", "/read", "testclient", AGENT) for event in events)

    corruptions = backend.extra.get("corruptions")
    if isinstance(corruptions, Corruptions):
        alice = h.login("alice")
        recorder.take()
        key = key_of(h.sessions, alice.cookie or "")
        run(h.client, lambda: corruptions.corrupt(h.store.inner, key, FUTURE))
        alice.get("/read")
        (undecodable,) = recorder.take()
        assert isinstance(undecodable, SessionRejected)
        assert (undecodable.reason, undecodable.handle) == ("undecodable", key)


def test_expiry_found_on_load(h: Harness[UserSession], recorder: Recorder) -> None:
    browser = h.login("alice")
    key = key_of(h.sessions, browser.cookie or "")
    recorder.take()
    h.clock.advance(h.sessions.settings.idle_timeout or 0)
    assert browser.get("/me").status_code == 401
    (expired,) = recorder.take()
    assert isinstance(expired, SessionExpired)
    assert (expired.handle, expired.user_id, expired.reason, expired.path) == (key, "alice", "idle", "/me")


def test_revocations(h: Harness[UserSession], recorder: Recorder) -> None:
    first = h.login("alice")
    h.clock.advance(1)  # so the oldest is the first
    second = h.login("alice")
    handles = [key_of(h.sessions, browser.cookie or "") for browser in (first, second)]
    recorder.take()

    h.clock.advance(1)
    third = h.login("alice")  # over max_sessions_per_user=2: the oldest goes
    evicted, created = recorder.take()
    assert isinstance(evicted, SessionRevoked) and isinstance(created, SessionCreated)
    assert (evicted.handle, evicted.user_id, evicted.reason, evicted.count) == (handles[0], "alice", "limit", 1)
    assert request_of(evicted) == ("POST", "/login", "testclient", AGENT)

    third.post("/devices/revoke", params={"handle": handles[1]})
    (revoked,) = recorder.take()
    assert isinstance(revoked, SessionRevoked)
    assert (revoked.handle, revoked.reason, revoked.path) == (handles[1], "revoke_session", "/devices/revoke")
    third.post("/devices/revoke", params={"handle": handles[1]})  # no longer live: nothing revoked
    assert recorder.take() == []

    fourth = h.login("alice")
    recorder.take()
    fourth.post("/devices/revoke-others")
    (others,) = recorder.take()
    assert isinstance(others, SessionRevoked)
    assert (others.handle, others.user_id, others.reason, others.count) == (None, "alice", "revoke_all_sessions", 1)


def test_a_revocation_from_a_script_has_no_request_and_is_awaited_by_close(backend: Backend) -> None:
    recorder = Recorder()
    with serve(backend, UserSession) as h:
        h.sessions.on("revoked")(recorder)
        h.login("alice")
        h.login("alice")
        assert h.revoke_all("alice") == 2
    # The listener ran as a task, and the app's shutdown (closing the store) waited for it.
    (event,) = recorder.events
    assert isinstance(event, SessionRevoked)
    assert (event.user_id, event.reason, event.count) == ("alice", "revoke_all_sessions", 2)
    assert request_of(event) == (None, None, None, None)


def test_listeners_by_kind_and_by_class_sync_and_async(h: Harness[UserSession]) -> None:
    seen: list[str] = []

    @h.sessions.on("created")
    def by_name(event: SessionEvent) -> None:
        seen.append(f"name:{event.kind}")

    @h.sessions.on(SessionDestroyed)
    async def by_class(event: SessionDestroyed) -> None:
        seen.append(f"class:{event.kind}")

    h.login("alice").post("/logout")
    assert seen == ["name:created", "class:destroyed"]

    h.sessions.remove_listener("created", by_name)
    h.sessions.remove_listener(SessionDestroyed, by_class)
    h.login("bob").post("/logout")
    assert seen == ["name:created", "class:destroyed"]
    with pytest.raises(ValueError, match="is not listening"):
        h.sessions.remove_listener("created", by_name)
    with pytest.raises(ValueError, match="unknown event kind 'login'"):
        h.sessions.on("login")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="SessionEvent class"):
        h.sessions.add_listener(int, print)  # type: ignore[type-var]


# How listeners run: on one store (nothing here reaches it beyond the lifecycle above).


@pytest.fixture
def memory_sessions() -> SessionManager[AuthSession]:
    return SessionManager(AuthSession, settings=settings(), store=MemoryStore(), listener_timeout=0.05)


def test_a_failing_listener_changes_nothing_and_is_logged(
    memory_sessions: SessionManager[AuthSession], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    @memory_sessions.on("created")
    async def broken(event: SessionEvent) -> None:
        raise RuntimeError("audit database down")

    @memory_sessions.on("created")
    def after(event: SessionEvent) -> None:
        calls.append("after")

    caplog.set_level(logging.INFO, "fastapi_sessions")
    with client(login_app(memory_sessions)) as browser:
        response = browser.post("/login/alice")
        assert (response.status_code, response.json()) == (200, {"user": "alice"})
        assert browser.get("/me").json() == {"user": "alice"}
    assert calls == ["after"]
    (failure,) = [record for record in caplog.records if "listener" in record.getMessage()]
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "broken failed on a created event" in failure.getMessage()


def test_a_slow_listener_is_cut_off_at_the_timeout(
    memory_sessions: SessionManager[AuthSession], caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    @memory_sessions.on("created")
    async def hangs(event: SessionEvent) -> None:
        await asyncio.Event().wait()

    @memory_sessions.on("created")
    def blocks(event: SessionEvent) -> None:
        release.wait(timeout=30)

    caplog.set_level(logging.INFO, "fastapi_sessions")
    try:
        with client(login_app(memory_sessions)) as browser:
            response = browser.post("/login/alice")
            assert (response.status_code, response.json()) == (200, {"user": "alice"})
    finally:
        release.set()
    timeouts = [record.getMessage() for record in caplog.records if "timed out" in record.getMessage()]
    assert len(timeouts) == 2, timeouts
    assert "hangs timed out after 0.05 s on a created event (listener_timeout)" in timeouts[0]
    assert "blocks timed out" in timeouts[1]


def test_no_listener_builds_no_event(
    memory_sessions: SessionManager[AuthSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastapi_sessions._events as events_module

    def refuse(*args: Any) -> Any:
        raise AssertionError("an event was built with no listener")

    monkeypatch.setattr(events_module, "_request_fields", refuse)
    monkeypatch.setattr(events_module, "Batch", refuse)
    quiet = SessionManager(UserSession, settings=settings(), store=MemoryStore())
    with client(build_app(quiet)) as browser:
        for path in ("/login?uid=alice", "/roles/add?role=x", "/logout"):
            assert browser.post(path).status_code == 200
        browser.cookies.clear()
        assert browser.get("/read", headers={"cookie": f"{quiet.cookie_name}=forged"}).status_code == 200


def test_listener_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="listener_timeout must be positive"):
        SessionManager(AuthSession, settings=settings(), store=MemoryStore(), listener_timeout=0)


# The lifecycle log lines carry the same facts as fields of the record.


def test_log_records_carry_structured_fields(h: Harness[UserSession], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "fastapi_sessions")
    browser = h.login("alice")
    key = key_of(h.sessions, browser.cookie or "")
    browser.replay("GET", "/read", "forged")
    browser.post("/logout")
    fields = ("session_event", "session_handle", "session_user_id", "session_reason")
    lines = [
        (record.getMessage().split(":")[0], *(getattr(record, name) for name in fields))
        for record in caplog.records
        if hasattr(record, "session_event")
    ]
    assert lines == [
        ("session created", "created", key, "alice", "login"),
        ("session rejected", "rejected", None, None, "bad_signature"),
        ("session destroyed", "destroyed", key, "alice", "logout"),
    ]


def test_events_of_a_request_that_fails_after_its_commit_still_run(
    memory_sessions: SessionManager[AuthSession],
) -> None:
    """A streamed body that raises after the commit: the events go to tasks, awaited at shutdown."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import StreamingResponse
    from fastapi.testclient import TestClient

    recorder = Recorder()
    memory_sessions.add_listener("created", functools.partial(recorder))
    app = FastAPI()
    memory_sessions.install(app)

    @app.post("/login-then-fail")
    async def login_then_fail(session: Annotated[AuthSession, Depends(memory_sessions)]) -> StreamingResponse:
        session.login("alice")

        async def body() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("the body broke")

        return StreamingResponse(body())

    with TestClient(app, raise_server_exceptions=False) as browser:
        browser.post("/login-then-fail")
    (event,) = recorder.events
    assert isinstance(event, SessionCreated) and event.user_id == "alice"


def test_websocket_events_run_at_once(memory_sessions: SessionManager[AuthSession]) -> None:
    from fastapi import Depends, FastAPI, WebSocket
    from fastapi.testclient import TestClient

    seen: list[SessionEvent] = []

    @memory_sessions.on("rejected")
    async def rejected(event: SessionEvent) -> None:
        seen.append(event)

    app = FastAPI()
    memory_sessions.install(app)

    @app.websocket("/ws")
    async def updates(websocket: WebSocket, session: Annotated[AuthSession, Depends(memory_sessions)]) -> None:
        await websocket.accept()
        await websocket.send_json({"user": session.user_id})
        await websocket.close()

    with TestClient(app) as browser:
        cookie = f"{memory_sessions.cookie_name}=forged"
        with browser.websocket_connect("/ws", headers={"cookie": cookie}) as socket:
            assert socket.receive_json() == {"user": None}
    (event,) = seen
    assert (event.kind, event.reason, event.method, event.path) == ("rejected", "bad_signature", None, "/ws")
