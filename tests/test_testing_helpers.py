"""`fastapi_sessions.testing`: sessions stored without a login route reach the app through HTTP, on every store."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, assert_type

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionLimitError, SessionManager, SessionModel
from fastapi_sessions.testing import FakeClock, force_login, read_session, seed_session
from tests.support import BASE_URL, Backend, CountingStore, UserSession, build_app, client, make_manager


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def sessions(backend: Backend, clock: FakeClock) -> SessionManager[UserSession]:
    return make_manager(UserSession, backend.make_store(), clock=clock, max_sessions_per_user=2)


@pytest.fixture
def browser(sessions: SessionManager[UserSession]) -> Iterator[TestClient]:
    with client(build_app(sessions)) as test_client:
        yield test_client


@asynccontextmanager
async def async_client(sessions: SessionManager[Any], **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(sessions)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, **kwargs) as http:
            yield http
    finally:
        await sessions.close()  # no lifespan runs over ASGITransport: the store opened on first use


# On every store, through a TestClient started with `with`.


def test_force_login_is_a_login_the_app_accepts(browser: TestClient, sessions: SessionManager[UserSession]) -> None:
    session = force_login(browser, sessions, "42", roles=["admin"], theme="dark")
    assert_type(session, UserSession)
    assert (session.user_id, session.roles, session.theme) == ("42", {"admin"}, "dark")
    assert session.authenticated_at == datetime.fromtimestamp(sessions.clock(), UTC)
    expected = {"user_id": "42", "roles": ["admin"], "theme": "dark", "pending": []}
    assert browser.get("/me").json() == expected
    assert browser.get("/admin").status_code == 200
    [device] = browser.get("/devices").json()
    assert device["handle"] == session.handle and device["current"] and device["user_agent"] == "testclient"
    token = session.csrf_token
    assert browser.post("/transfer", headers={"X-CSRF-Token": token}).status_code == 200
    assert read_session(browser, sessions) == session
    assert browser.post("/logout").status_code == 200
    assert read_session(browser, sessions) is None
    assert browser.get("/me").status_code == 401


def test_seed_session_is_not_logged_in(browser: TestClient, sessions: SessionManager[UserSession]) -> None:
    session = seed_session(browser, sessions, theme="dark")
    assert_type(session, UserSession)
    assert session.user_id is None and session.handle is not None
    assert browser.get("/read").json()["theme"] == "dark"
    assert browser.get("/me").status_code == 401
    browser.post("/write", params={"theme": "blue"})
    stored = read_session(browser, sessions)
    assert stored is not None and stored.theme == "blue" and stored.handle == session.handle
    browser.post("/login", params={"uid": "7"})  # a real login over the seeded session
    stored = read_session(browser, sessions)
    assert stored is not None and (stored.user_id, stored.theme) == ("7", "blue")


def test_force_login_keeps_the_per_user_limit(
    browser: TestClient, sessions: SessionManager[UserSession], clock: FakeClock
) -> None:
    first = force_login(browser, sessions, "1")
    clock.advance(1)  # "oldest" is by creation time: one second apart, so which one goes is certain
    force_login(browser, sessions, "1")
    clock.advance(1)
    latest = force_login(browser, sessions, "1")
    handles = [info["handle"] for info in browser.get("/devices").json()]
    assert len(handles) == 2 and first.handle not in handles and latest.handle in handles
    assert browser.get("/me").json()["user_id"] == "1"


def test_force_login_replaces_the_cookie_of_a_real_login(
    browser: TestClient, sessions: SessionManager[UserSession]
) -> None:
    browser.post("/login", params={"uid": "1"})
    force_login(browser, sessions, "2")
    assert browser.get("/me").json()["user_id"] == "2"  # one cookie sent, not two
    browser.post("/logout")
    force_login(browser, sessions, "3")
    assert browser.get("/me").json()["user_id"] == "3"


def test_fields_reach_the_guards(browser: TestClient, sessions: SessionManager[UserSession], clock: FakeClock) -> None:
    force_login(browser, sessions, "1", authenticated_at=datetime.fromtimestamp(clock() - 301, UTC))
    assert browser.get("/sensitive").status_code == 403
    browser.post("/reauth")
    assert browser.get("/sensitive").status_code == 200
    force_login(browser, sessions, "1", pending_factors={"totp"})
    assert browser.get("/me").status_code == 401
    assert browser.get("/partial").json()["pending"] == ["totp"]


def test_the_idle_timeout_passes_on_the_fake_clock(
    browser: TestClient, sessions: SessionManager[UserSession], clock: FakeClock
) -> None:
    force_login(browser, sessions, "1")
    clock.advance(sessions.settings.touch_after)
    assert browser.get("/me").status_code == 200  # touched: the idle timeout starts again
    clock.advance(sessions.settings.idle_timeout - 1)  # type: ignore[operator]  # it is set by default
    assert read_session(browser, sessions) is not None
    clock.advance(1)
    assert read_session(browser, sessions) is None
    assert browser.get("/me").status_code == 401


# On every store, through an httpx.AsyncClient over ASGITransport.


@pytest.mark.anyio
async def test_async_client(sessions: SessionManager[UserSession]) -> None:
    async with async_client(sessions) as http:
        session = await force_login(http, sessions, "42", roles=["admin"])
        assert_type(session, UserSession)
        assert (await http.get("/me")).json()["user_id"] == "42"
        assert (await http.get("/admin")).status_code == 200
        stored = await read_session(http, sessions)
        assert_type(stored, UserSession | None)
        assert stored == session
        await http.post("/logout")
        assert await read_session(http, sessions) is None
        seeded = await seed_session(http, sessions, theme="dark")
        assert seeded.theme == "dark"
        assert (await http.get("/read")).json()["theme"] == "dark"


# What does not depend on the store.


@pytest.fixture
def memory_sessions() -> SessionManager[UserSession]:
    return make_manager(UserSession, MemoryStore())


def test_an_unstarted_test_client_works_with_the_memory_store(memory_sessions: SessionManager[UserSession]) -> None:
    browser = TestClient(build_app(memory_sessions), base_url=BASE_URL)
    force_login(browser, memory_sessions, "1")
    assert browser.get("/me").json()["user_id"] == "1"
    stored = read_session(browser, memory_sessions)
    assert stored is not None and stored.user_id == "1"


class NetworkStore(CountingStore):
    """A memory store that says it does I/O, as a store with connections to a server does."""

    @property
    def in_process(self) -> bool:
        return False


def test_an_unstarted_test_client_is_refused_for_a_store_with_connections() -> None:
    sessions = make_manager(UserSession, NetworkStore(MemoryStore()))
    browser = TestClient(build_app(sessions), base_url=BASE_URL)
    with pytest.raises(RuntimeError, match=r"start the TestClient first .* NetworkStore keeps its connections"):
        force_login(browser, sessions, "1")
    with client(build_app(sessions)) as started:
        force_login(started, sessions, "1")
        assert started.get("/me").status_code == 200


def test_a_secure_cookie_needs_an_https_base_url(memory_sessions: SessionManager[UserSession]) -> None:
    with TestClient(build_app(memory_sessions)) as browser:
        message = r"the session cookie is Secure .* to http://testserver/: create the client with base_url='https://"
        with pytest.raises(RuntimeError, match=message):
            force_login(browser, memory_sessions, "1")
        with pytest.raises(RuntimeError, match=message):
            read_session(browser, memory_sessions)
    plain = make_manager(UserSession, MemoryStore(), https_only=False)
    with TestClient(build_app(plain)) as browser:
        force_login(browser, plain, "1")
        assert browser.get("/me").json()["user_id"] == "1"


def test_the_cookie_goes_where_the_settings_put_it() -> None:
    sessions = make_manager(UserSession, MemoryStore(), cookie_name="__Secure-sid", domain="example.com")
    with TestClient(build_app(sessions), base_url="https://app.example.com") as browser:
        force_login(browser, sessions, "1")
        [cookie] = browser.cookies.jar
        assert (cookie.name, cookie.domain, cookie.path, cookie.secure) == ("__Secure-sid", ".example.com", "/", True)
        assert browser.get("/me").json()["user_id"] == "1"
    with TestClient(build_app(sessions), base_url=BASE_URL) as browser:
        with pytest.raises(RuntimeError, match=r"would not send the session cookie .* Domain=example.com"):
            force_login(browser, sessions, "1")


def test_httpx2_async_client(memory_sessions: SessionManager[UserSession]) -> None:
    transport = httpx2.ASGITransport(app=build_app(memory_sessions))

    async def scenario() -> None:
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            await force_login(http, memory_sessions, "5")
            assert (await http.get("/me")).json()["user_id"] == "5"

    import anyio

    anyio.run(scenario)


def test_misuse_is_explained(memory_sessions: SessionManager[UserSession]) -> None:
    expected = r"expected a fastapi\.testclient\.TestClient or an httpx\.AsyncClient, got str"
    with pytest.raises(TypeError, match=expected):
        seed_session("https://testserver", memory_sessions)  # type: ignore[call-overload]
    plain = make_manager(SessionModel, MemoryStore())
    with client(build_app(memory_sessions)) as browser:
        with pytest.raises(TypeError, match="subclasses AuthSession; SessionModel does not"):
            force_login(browser, plain, "1")  # type: ignore[type-var]
        with pytest.raises(TypeError, match="UserSession has no field 'colour'; its fields are user_id, roles, "):
            seed_session(browser, memory_sessions, colour="red")


def test_a_login_beyond_a_refusing_limit_raises() -> None:
    sessions = make_manager(UserSession, MemoryStore(), max_sessions_per_user=1, limit_policy="refuse")
    with client(build_app(sessions)) as browser:
        force_login(browser, sessions, "1")
        with pytest.raises(SessionLimitError):
            force_login(browser, sessions, "1")


# The manager methods the helpers are built on.


@pytest.mark.anyio
async def test_create_session_refuses_a_destroyed_session() -> None:
    sessions = make_manager(AuthSession, MemoryStore())
    with pytest.raises(ValueError, match="destroyed the new session"):
        await sessions.create_session(lambda session: session.logout())


@pytest.mark.anyio
async def test_load_session_is_what_a_request_would_load() -> None:
    clock = FakeClock()
    sessions = make_manager(AuthSession, MemoryStore(), clock=clock, max_age=3600, idle_timeout=None)
    session, set_cookie = await sessions.create_session(lambda s: s.login("1"), user_agent="pytest")
    assert set_cookie.startswith("__Host-session=") and "; Secure" in set_cookie and "Max-Age=3600" in set_cookie
    cookie = set_cookie.partition(";")[0].partition("=")[2]
    assert await sessions.load_session(cookie) == session
    assert session.created_at == datetime.fromtimestamp(clock(), UTC)
    [info] = await sessions.list_sessions("1")
    assert (info.handle, info.user_agent, info.ip) == (session.handle, "pytest", None)
    assert await sessions.load_session(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    clock.advance(3600 - 1)
    assert await sessions.load_session(cookie) is not None
    clock.advance(timedelta(seconds=1).total_seconds())
    assert await sessions.load_session(cookie) is None


def test_fake_clock() -> None:
    clock = FakeClock(100.0)
    clock.advance(2.5)
    assert clock() == 102.5
    assert abs(FakeClock()() - datetime.now(UTC).timestamp()) < 60
