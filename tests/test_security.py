"""Security properties of the session lifecycle, proven through HTTP on every store.

Each test builds a small app over ``backend.make_store()`` and drives it as browsers would, asserting
status, body and the ``Set-Cookie`` attributes. Time moves by a `FakeClock` given to the manager, so
idle and absolute timeouts are decided by the manager before any store's own expiry.
"""

import base64
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi import Response as FastAPIResponse
from fastapi.testclient import TestClient
from httpx2 import Response
from starlette.applications import Starlette
from starlette.routing import Mount

from fastapi_sessions import (
    AuthSession,
    SessionConfigError,
    SessionDataTooLargeError,
    SessionManager,
    SessionSettings,
    SessionStore,
    StoredSession,
    UpdateResult,
)
from fastapi_sessions.signing import CookieSigner, new_session_id, store_key
from tests.support import OTHER_SECRET, SECRET, Backend, FakeClock, client, make_manager, set_cookies

T = TypeVar("T")

# Test tools: a store that counts calls, a browser with its own cookie, and Set-Cookie parsing.


class CountingStore(SessionStore):
    """Wraps a store and counts every call, to prove which requests do store I/O and which write.

    Args:
        inner: The store under test.
        lifecycle: Whether `open` and `close` reach the inner store. Off when several managers share
            one store and the test opens and closes it once.
    """

    WRITES = ("create", "update", "delete", "replace")

    def __init__(self, inner: SessionStore, *, lifecycle: bool = True) -> None:
        self.inner = inner
        self.lifecycle = lifecycle
        self.calls: Counter[str] = Counter()
        self.keys: set[str] = set()
        """Every key the store was given."""

    @property
    def in_process(self) -> bool:
        """As the inner store: the manager applies no timeout to an in-process store."""
        return bool(getattr(self.inner, "in_process", False))

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in self.WRITES)

    @property
    def io(self) -> int:
        return sum(count for name, count in self.calls.items() if name not in ("open", "close"))

    async def open(self) -> None:
        self.calls["open"] += 1
        if self.lifecycle:
            await self.inner.open()

    async def close(self) -> None:
        self.calls["close"] += 1
        if self.lifecycle:
            await self.inner.close()

    async def load(self, key: str) -> StoredSession | None:
        self.calls["load"] += 1
        self.keys.add(key)
        return await self.inner.load(key)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        self.calls["load_many"] += 1
        self.keys.update(keys)
        return await self.inner.load_many(keys)

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        self.calls["create"] += 1
        self.keys.add(key)
        await self.inner.create(key, data, ttl=ttl, user_id=user_id)

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        self.calls["update"] += 1
        self.keys.add(key)
        return await self.inner.update(key, changes, removed=removed, ttl=ttl, expected_version=expected_version)

    async def replace(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> bool:
        self.calls["replace"] += 1
        self.keys.update((old_key, new_key))
        return await self.inner.replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        self.calls["delete"] += 1
        self.keys.add(key)
        return await self.inner.delete(key, user_id=user_id)

    async def user_keys(self, user_id: str) -> list[str]:
        self.calls["user_keys"] += 1
        return await self.inner.user_keys(user_id)

    async def cleanup(self) -> int:
        self.calls["cleanup"] += 1
        return await self.inner.cleanup()


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header: attribute names lowercased, flags mapped to ``""``."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> "SetCookie":
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes = {}
        for part in rest:
            key, _, attribute = part.strip().partition("=")
            attributes[key.lower()] = attribute
        return cls(name, value, attributes)

    @property
    def max_age(self) -> int | None:
        value = self.attributes.get("max-age")
        return int(value) if value is not None else None

    @property
    def scope(self) -> tuple[str, str | None, str | None]:
        """What a browser matches to replace or expire a cookie: name, path and domain."""
        return self.name, self.attributes.get("path"), self.attributes.get("domain")


def parsed_cookies(response: Response) -> list[SetCookie]:
    return [SetCookie.parse(header) for header in set_cookies(response)]


def assert_no_new_cookie(response: Response) -> None:
    """A request whose cookie named no live session gets no cookie back, at most the old one expired."""
    assert all(cookie.max_age == 0 and cookie.value == "" for cookie in parsed_cookies(response)), response.headers


class Browser:
    """One browser: its own session cookie and User-Agent, over a shared `TestClient`.

    Several browsers share one client (so one event loop, which network stores need), each
    sending only its own cookie. A ``Max-Age=0`` answer expires the cookie, as a browser would.
    """

    def __init__(self, test_client: TestClient, cookie_name: str, user_agent: str = "test-browser/1.0") -> None:
        self.client = test_client
        self.cookie_name = cookie_name
        self.user_agent = user_agent
        self.cookie: str | None = None

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str | bytes] | None = None, **kwargs: Any
    ) -> Response:
        sent = {b"user-agent": self.user_agent.encode()}
        if self.cookie is not None:
            sent[b"cookie"] = f"{self.cookie_name}={self.cookie}".encode()
        for name, value in (headers or {}).items():
            sent[name.lower().encode()] = value if isinstance(value, bytes) else value.encode()
        self.client.cookies.clear()
        response = self.client.request(method, url, headers=sent, **kwargs)
        self.client.cookies.clear()
        for cookie in parsed_cookies(response):
            if cookie.name == self.cookie_name:
                self.cookie = None if cookie.max_age == 0 else cookie.value
        return response

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def replay(self, method: str, url: str, cookie: str, **kwargs: Any) -> Response:
        """Send a request with ``cookie`` (e.g. a stolen or stale one) without changing this browser's own."""
        kept = self.cookie
        self.cookie = cookie
        try:
            return self.request(method, url, **kwargs)
        finally:
            self.cookie = kept


def run(test_client: TestClient, operation: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine in the app's event loop (where the store's connections live)."""
    portal = test_client.portal
    assert portal is not None, "use the client inside its `with` block"

    async def call() -> T:
        return await operation()

    return portal.call(call)


def key_of(manager: SessionManager[Any], cookie: str) -> str:
    """The store key of the session a cookie names."""
    unsigned = manager.signer.unsign(cookie)
    assert unsigned is not None
    return store_key(unsigned.session_id)


def stored(test_client: TestClient, store: SessionStore, manager: SessionManager[Any], cookie: str) -> Any:
    """The raw record the store holds for ``cookie``, or ``None``."""
    return run(test_client, lambda: store.load(key_of(manager, cookie)))


@contextmanager
def serve_together(store: SessionStore, apps: Mapping[str, FastAPI]) -> Iterator[TestClient]:
    """Serve several apps (e.g. one per deployment's settings) over one store, opened once, in one client."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with store:
            yield

    root = Starlette(routes=[Mount(prefix, app=app) for prefix, app in apps.items()], lifespan=lifespan)
    with TestClient(root, base_url="https://testserver") as test_client:
        yield test_client


# The app under test.


class UserSession(AuthSession):
    theme: str = "light"


def build_app(sessions: SessionManager[UserSession]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]
    LoggedIn = Annotated[UserSession, Depends(sessions.require_auth)]

    def view(session: UserSession) -> dict[str, Any]:
        return {
            "user_id": session.user_id,
            "roles": sorted(session.roles),
            "theme": session.theme,
            "pending": sorted(session.pending_factors),
        }

    @app.get("/public")
    async def public_page() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return view(session)

    @app.post("/cached")
    async def cached(session: Session, response: FastAPIResponse, theme: str | None = None) -> dict[str, Any]:
        response.headers["cache-control"] = "public, max-age=3600"
        response.headers["vary"] = "Accept-Encoding"
        if theme is not None:
            session.theme = theme
        return view(session)

    @app.post("/write")
    async def write(session: Session, theme: str) -> dict[str, Any]:
        session.theme = theme
        return view(session)

    @app.post("/login")
    async def login(session: Session, uid: str, role: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        session.login(uid, role or [])
        return view(session)

    @app.post("/login-partial")
    async def login_partial(session: Session, uid: str) -> dict[str, Any]:
        session.login(uid, pending=["totp"])
        return view(session)

    @app.get("/partial")
    async def partial(session: Annotated[UserSession, Depends(sessions.require_partial_auth)]) -> dict[str, Any]:
        return view(session)

    @app.post("/totp")
    async def totp(session: Annotated[UserSession, Depends(sessions.require_partial_auth)]) -> dict[str, Any]:
        session.complete_factor("totp")
        return view(session)

    @app.get("/me")
    async def me(session: LoggedIn) -> dict[str, Any]:
        return view(session)

    @app.post("/roles/add")
    async def add_role(session: LoggedIn, role: str) -> dict[str, Any]:
        session.roles.add(role)
        return view(session)

    @app.post("/roles/assign")
    async def assign_roles(session: LoggedIn, role: str) -> dict[str, Any]:
        session.roles = {role}
        return view(session)

    @app.post("/user/assign")
    async def assign_user(session: LoggedIn, uid: str) -> dict[str, Any]:
        session.user_id = uid
        return view(session)

    @app.get("/admin")
    async def admin(session: Annotated[UserSession, Depends(sessions.require_roles("admin"))]) -> dict[str, Any]:
        return view(session)

    @app.get("/sensitive")
    async def sensitive(session: Annotated[UserSession, Depends(sessions.require_recent_auth(300))]) -> dict[str, Any]:
        return view(session)

    @app.post("/reauth")
    async def reauth(session: LoggedIn) -> dict[str, Any]:
        session.reauthenticate()
        return view(session)

    @app.post("/logout")
    async def logout(session: Session, flash: str | None = None) -> dict[str, bool]:
        session.logout()
        if flash is not None:
            session.flash(flash)
        return {"ok": True}

    @app.post("/switch-user")
    async def switch_user(session: Session, uid: str) -> dict[str, Any]:
        session.logout()
        session.login(uid)
        return view(session)

    @app.post("/destroy")
    async def destroy(session: Session, flash: str | None = None) -> dict[str, bool]:
        session.destroy()
        if flash is not None:
            session.flash(flash)
        return {"ok": True}

    @app.post("/regenerate")
    async def regenerate(session: Session) -> dict[str, Any]:
        session.regenerate()
        return view(session)

    @app.get("/csrf")
    async def csrf(session: Session) -> dict[str, str]:
        return {"token": session.csrf_token}

    @app.api_route("/transfer", methods=["GET", "POST", "DELETE"])
    async def transfer(session: Annotated[UserSession, Depends(sessions.require_csrf)]) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/flash")
    async def flash(session: Session, message: str, category: str) -> dict[str, bool]:
        session.flash(message, category=category)
        return {"ok": True}

    @app.get("/flashes")
    async def flashes(session: Session) -> list[list[str]]:
        return [list(item) for item in session.pop_flashes()]

    return app


@dataclass
class Harness:
    """An app under test with its manager, counting store, clock and HTTP client."""

    sessions: SessionManager[UserSession]
    store: CountingStore
    clock: FakeClock
    client: TestClient

    def browser(self, user_agent: str = "test-browser/1.0") -> Browser:
        return Browser(self.client, self.sessions.cookie_name, user_agent)

    def record(self, cookie: str) -> StoredSession | None:
        result: StoredSession | None = stored(self.client, self.store.inner, self.sessions, cookie)
        return result


@contextmanager
def harness(backend: Backend, **overrides: Any) -> Iterator[Harness]:
    clock = FakeClock()
    store = CountingStore(backend.make_store())
    sessions = make_manager(UserSession, store, clock=clock, **overrides)
    with client(build_app(sessions)) as test_client:
        yield Harness(sessions, store, clock, test_client)


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness]:
    with harness(backend) as value:
        yield value


# Authentication lifecycle.


def test_login_issues_new_id_keeps_data_and_kills_the_old_record(h: Harness) -> None:
    browser = h.browser()
    assert browser.post("/write", params={"theme": "dark"}).status_code == 200
    anonymous = browser.cookie
    assert anonymous is not None and h.record(anonymous) is not None

    calls = h.store.calls.copy()
    response = browser.post("/login", params={"uid": "alice"})
    assert response.status_code == 200
    assert response.json()["theme"] == "dark"
    # One store operation moves the session: the old record never outlives the new one.
    assert h.store.calls - calls == {"load": 1, "replace": 1}
    assert browser.cookie is not None and browser.cookie != anonymous
    assert h.record(anonymous) is None
    assert h.record(browser.cookie) is not None
    assert browser.get("/me").json() == {"user_id": "alice", "roles": [], "theme": "dark", "pending": []}
    # The old cookie names nothing: a fresh anonymous session, and no new cookie.
    replayed = browser.replay("GET", "/read", anonymous)
    assert replayed.json()["theme"] == "light"
    assert_no_new_cookie(replayed)


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("POST", "/roles/add", {"role": "admin"}, {"user_id": "alice", "roles": ["admin", "staff"]}),
        ("POST", "/roles/assign", {"role": "admin"}, {"user_id": "alice", "roles": ["admin"]}),
        ("POST", "/user/assign", {"uid": "bob"}, {"user_id": "bob", "roles": ["staff"]}),
        ("POST", "/login", {"uid": "bob"}, {"user_id": "bob", "roles": []}),
    ],
    ids=["roles-add-in-place", "roles-assigned", "user-id-assigned", "login-again"],
)
def test_every_privilege_change_issues_a_new_id(
    h: Harness, method: str, path: str, params: dict[str, str], expected: dict[str, Any]
) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice", "role": "staff"})
    browser.post("/write", params={"theme": "dark"})
    token = browser.get("/csrf").json()["token"]
    before = browser.cookie
    assert before is not None

    response = browser.request(method, path, params=params)
    assert response.status_code == 200
    assert browser.cookie is not None and browser.cookie != before
    assert h.record(before) is None
    assert browser.get("/csrf").json()["token"] != token
    body = browser.get("/me").json()
    assert {"user_id": body["user_id"], "roles": body["roles"]} == expected
    assert body["theme"] == "dark"
    assert browser.replay("GET", "/me", before).status_code == 401


def test_a_planted_session_is_never_adopted_at_login(h: Harness) -> None:
    """Session fixation: an attacker's own live session, planted in the victim's browser, dies at login."""
    attacker = h.browser("attacker")
    attacker.post("/write", params={"theme": "attacker-theme"})
    planted = attacker.cookie
    assert planted is not None
    victim = h.browser("victim")
    victim.cookie = planted
    victim.post("/login", params={"uid": "victim"})
    assert victim.cookie is not None and victim.cookie != planted
    assert attacker.get("/me").status_code == 401
    assert attacker.get("/read").json()["user_id"] is None
    assert victim.get("/me").json()["user_id"] == "victim"
    # A forged ID the server never issued is not adopted either, even when validly signed.
    forged = h.sessions.signer.sign("A" * 43)
    victim.cookie = forged
    victim.post("/login", params={"uid": "victim"})
    assert victim.cookie is not None and victim.cookie != forged


def test_session_ids_are_256_random_bits(h: Harness) -> None:
    issued = [new_session_id() for _ in range(2000)]
    assert len(set(issued)) == len(issued)
    assert all(len(base64.urlsafe_b64decode(session_id + "=")) == 32 for session_id in issued)
    cookies = set()
    for _ in range(20):
        browser = h.browser()
        browser.post("/write", params={"theme": "dark"})
        assert browser.cookie is not None
        cookies.add(browser.cookie)
    assert len(cookies) == 20


def test_the_store_never_sees_a_session_id(h: Harness) -> None:
    browser = h.browser()
    cookies = []
    for method, path, params in [
        ("POST", "/write", {"theme": "dark"}),
        ("POST", "/login", {"uid": "alice"}),
        ("POST", "/roles/add", {"role": "admin"}),
        ("GET", "/me", {}),
    ]:
        browser.request(method, path, params=params)
        assert browser.cookie is not None
        cookies.append(browser.cookie)
    records = [h.record(cookie) for cookie in cookies[-1:]]
    browser.post("/logout")
    ids = {unsigned.session_id for cookie in cookies if (unsigned := h.sessions.signer.unsign(cookie))}
    assert len(ids) == 3
    assert h.store.keys and all(re.fullmatch(r"[0-9a-f]{40}", key) for key in h.store.keys)
    assert ids.isdisjoint(h.store.keys)
    dumped = repr(records)
    assert not any(session_id in dumped or session_id[:20] in dumped for session_id in ids)


def test_an_unprivileged_write_keeps_the_id(h: Harness) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    before = browser.cookie
    response = browser.post("/write", params={"theme": "dark"})
    assert response.status_code == 200
    assert parsed_cookies(response) == []
    assert browser.cookie == before


def test_partial_login_then_complete_factor(h: Harness) -> None:
    browser = h.browser()
    response = browser.post("/login-partial", params={"uid": "alice"})
    assert response.json()["pending"] == ["totp"]
    partial = browser.cookie
    assert partial is not None

    assert browser.get("/partial").status_code == 200
    denied = browser.get("/me")
    assert denied.status_code == 401
    assert denied.json() == {"detail": "Authentication incomplete"}

    assert browser.post("/totp").status_code == 200
    assert browser.cookie != partial
    assert browser.get("/me").json()["user_id"] == "alice"
    assert h.record(partial) is None
    assert browser.replay("GET", "/partial", partial).status_code == 401


def test_step_up_after_the_clock_moves(h: Harness) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    assert browser.get("/sensitive").status_code == 200
    h.clock.advance(301)
    response = browser.get("/sensitive")
    assert response.status_code == 403
    assert response.json() == {"detail": "Recent authentication required"}
    assert browser.get("/me").status_code == 200
    before = browser.cookie
    assert before is not None
    assert browser.post("/reauth").status_code == 200
    assert browser.get("/sensitive").status_code == 200
    # Re-authentication issues a new ID too: a token captured before the step-up does not carry it.
    assert browser.cookie != before
    assert h.record(before) is None
    assert browser.replay("GET", "/sensitive", before).status_code == 401


def test_role_guard(h: Harness) -> None:
    browser = h.browser()
    assert browser.get("/admin").status_code == 401
    browser.post("/login", params={"uid": "alice"})
    assert browser.get("/admin").status_code == 403
    browser.post("/roles/add", params={"role": "admin"})
    assert browser.get("/admin").status_code == 200


@pytest.mark.parametrize("path", ["/logout", "/destroy"])
def test_logout_deletes_the_record_and_expires_the_cookie(h: Harness, path: str) -> None:
    browser = h.browser()
    login = browser.post("/login", params={"uid": "alice"})
    (issued,) = parsed_cookies(login)
    cookie = browser.cookie
    assert cookie is not None

    response = browser.post(path)
    assert response.status_code == 200
    (cleared,) = parsed_cookies(response)
    assert cleared.scope == issued.scope == ("__Host-session", "/", None)
    assert cleared.value == "" and cleared.max_age == 0
    assert cleared.attributes["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert h.record(cookie) is None
    assert browser.cookie is None
    assert browser.replay("GET", "/me", cookie).status_code == 401


def test_logout_with_custom_path_and_domain(backend: Backend) -> None:
    with harness(backend, cookie_name="app_sid", path="/app", domain="example.com") as h:
        browser = h.browser()
        (issued,) = parsed_cookies(browser.post("/login", params={"uid": "alice"}))
        assert issued.scope == ("app_sid", "/app", "example.com")
        cookie = browser.cookie
        assert cookie is not None
        (cleared,) = parsed_cookies(browser.post("/logout"))
        assert cleared.scope == issued.scope
        assert cleared.max_age == 0
        assert {name for name in cleared.attributes} >= {"secure", "httponly", "samesite"}
        assert browser.replay("GET", "/me", cookie).status_code == 401


@pytest.mark.parametrize("path", ["/logout", "/destroy"])
@pytest.mark.parametrize("login", [True, False], ids=["logged-in", "anonymous"])
def test_a_flash_after_logout_is_kept_in_a_new_session(h: Harness, path: str, login: bool) -> None:
    browser = h.browser()
    if login:
        browser.post("/login", params={"uid": "alice"})
    browser.post("/write", params={"theme": "dark"})
    token = browser.get("/csrf").json()["token"]
    before = browser.cookie
    assert before is not None

    response = browser.post(path, params={"flash": "Logged out"})
    assert response.status_code == 200
    assert browser.cookie is not None and browser.cookie != before
    assert h.record(before) is None
    assert browser.get("/flashes").json() == [["info", "Logged out"]]
    assert browser.get("/read").json() == {"user_id": None, "roles": [], "theme": "light", "pending": []}
    assert browser.get("/csrf").json()["token"] != token
    assert browser.replay("GET", "/read", before).json()["theme"] == "light"


def test_logout_then_login_in_one_request_switches_user(h: Harness) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice", "role": "admin"})
    browser.post("/write", params={"theme": "dark"})
    before = browser.cookie
    assert before is not None
    response = browser.post("/switch-user", params={"uid": "bob"})
    assert response.json()["user_id"] == "bob"
    assert browser.cookie is not None and browser.cookie != before
    assert browser.get("/me").json() == {"user_id": "bob", "roles": [], "theme": "light", "pending": []}
    assert h.record(before) is None
    assert browser.replay("GET", "/me", before).status_code == 401


def test_idle_timeout_counts_from_last_seen_on_the_server(backend: Backend) -> None:
    with harness(backend, idle_timeout=600, touch_after=60) as h:
        browser = h.browser()
        browser.post("/login", params={"uid": "alice"})
        for _ in range(5):
            h.clock.advance(599)
            assert browser.get("/me").status_code == 200  # each read counts as activity (rolling)
        h.clock.advance(600)
        response = browser.get("/me")
        assert response.status_code == 401
        assert_no_new_cookie(response)


def test_without_rolling_only_writes_count_as_activity(backend: Backend) -> None:
    with harness(backend, idle_timeout=600, touch_after=60, rolling=False) as h:
        browser = h.browser()
        browser.post("/login", params={"uid": "alice"})
        h.clock.advance(300)
        browser.post("/write", params={"theme": "dark"})
        h.clock.advance(500)
        assert browser.get("/me").status_code == 200  # 500 s after the write
        h.clock.advance(200)
        assert browser.get("/me").status_code == 401  # 700 s after the write; the read did not count


def test_absolute_timeout_is_never_extended(backend: Backend) -> None:
    with harness(backend, max_age=3600, idle_timeout=600, touch_after=60) as h:
        browser = h.browser()
        (first,) = parsed_cookies(browser.post("/write", params={"theme": "dark"}))
        assert first.max_age == 3600
        for _ in range(6):  # active all along: 3000 s
            h.clock.advance(500)
            assert browser.get("/read").json()["theme"] == "dark"
        # Logging in late in the anonymous session's life keeps its deadline.
        (late,) = parsed_cookies(browser.post("/login", params={"uid": "alice"}))
        assert late.max_age == 600
        h.clock.advance(300)
        (regenerated,) = parsed_cookies(browser.post("/regenerate"))
        assert regenerated.max_age == 300
        h.clock.advance(299)
        assert browser.get("/me").status_code == 200
        h.clock.advance(1)
        expired = browser.get("/me")
        assert expired.status_code == 401
        assert_no_new_cookie(expired)


# Keys and secrets.


def test_fallback_key_is_accepted_and_re_signed(backend: Backend) -> None:
    clock = FakeClock()
    store = backend.make_store()
    shared = CountingStore(store, lifecycle=False)
    old = SessionManager(UserSession, settings=SessionSettings(secret_key=SECRET), store=shared, clock=clock)
    rotated_settings = SessionSettings(secret_key=OTHER_SECRET, secret_key_fallbacks=[SECRET])
    rotated = SessionManager(UserSession, settings=rotated_settings, store=shared, clock=clock)
    retired = SessionManager(UserSession, settings=SessionSettings(secret_key=OTHER_SECRET), store=shared, clock=clock)
    apps = {"/old": build_app(old), "/rotated": build_app(rotated), "/retired": build_app(retired)}
    with serve_together(store, apps) as test_client:
        browser = Browser(test_client, old.cookie_name)
        browser.post("/old/login", params={"uid": "alice"})
        signed_old = browser.cookie
        assert signed_old is not None
        session_id = CookieSigner(SECRET).unsign(signed_old)

        response = browser.get("/rotated/me")
        assert response.status_code == 200
        (resigned,) = parsed_cookies(response)
        assert resigned.value != signed_old
        new_signer = CookieSigner(OTHER_SECRET)
        assert session_id is not None and new_signer.unsign(resigned.value) == (session_id.session_id, False)
        assert CookieSigner(SECRET).unsign(resigned.value) is None
        assert response.headers["cache-control"] == "no-store"
        # Once re-signed, the next response needs no new cookie.
        assert parsed_cookies(browser.get("/rotated/me")) == []

        # With the old key gone from the list, a cookie still signed with it is a fresh anonymous session.
        stale = browser.replay("GET", "/retired/read", signed_old)
        assert stale.status_code == 200 and stale.json()["user_id"] is None
        assert browser.replay("GET", "/retired/me", signed_old).status_code == 401
        assert browser.get("/retired/me").status_code == 200  # the re-signed cookie works


def test_secrets_are_not_in_repr() -> None:
    fernet_key = "x" * 43 + "="
    settings = SessionSettings(secret_key=SECRET, secret_key_fallbacks=[OTHER_SECRET], encryption_keys=[fernet_key])
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text
        assert OTHER_SECRET not in text
        assert fernet_key not in text


@pytest.mark.parametrize(
    "secret",
    ["", "   ", "short-secret", "changeme", "keyboard cat", "a" * 64, "changeme" * 5],
    ids=["empty", "blank", "short", "well-known", "well-known-2", "one-character", "low-entropy"],
)
def test_weak_secrets_are_refused_at_startup(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("SESSION_SECRET_KEY", secret)
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY"):
        SessionManager(UserSession)
    monkeypatch.setenv("SESSION_SECRET_KEY", SECRET)
    monkeypatch.setenv("SESSION_SECRET_KEY_FALLBACKS", secret.strip() or "short")
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY_FALLBACKS"):
        SessionManager(UserSession)


def test_a_missing_secret_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_SECRET_KEY", raising=False)
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY"):
        SessionManager(UserSession)


def test_logs_hold_no_secret_and_no_session_id(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    browser = h.browser()
    cookies: list[str] = []

    def remember() -> None:
        if browser.cookie is not None and browser.cookie not in cookies:
            cookies.append(browser.cookie)

    browser.post("/write", params={"theme": "dark"})
    remember()
    browser.post("/login", params={"uid": "alice"})
    remember()
    browser.get("/me")
    browser.post("/logout")
    browser.replay("GET", "/me", cookies[-1])

    ids = [unsigned.session_id for cookie in cookies if (unsigned := h.sessions.signer.unsign(cookie))]
    assert len(ids) == 2
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (SECRET, *ids, *cookies, *(store_key(session_id) for session_id in ids)):
        assert secret not in text
    for session_id in ids:
        assert h.sessions.signer.log_id(session_id) in text
    messages = [record.getMessage() for record in caplog.records if record.name == "fastapi_sessions"]
    assert any(message.startswith("session created: ") for message in messages)
    assert any(message.startswith("session regenerated: ") for message in messages)
    assert any(message.startswith("session destroyed: ") for message in messages)
    assert any(message.startswith("session rejected: ") for message in messages)


def test_lifecycle_events_are_logged_with_a_salted_id(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastapi_sessions")
    with harness(backend, idle_timeout=600, touch_after=60) as h:
        browser = h.browser()
        browser.post("/write", params={"theme": "dark"})
        first = browser.cookie
        browser.post("/login", params={"uid": "alice"})
        second = browser.cookie
        h.clock.advance(601)
        browser.get("/me")
        browser.post("/login", params={"uid": "alice"})
        third = browser.cookie
        browser.post("/logout")
        browser.replay("GET", "/read", "A" * 43 + "." + "B" * 43)
    assert first and second and third
    signer = h.sessions.signer
    first_id, second_id, third_id = (signer.unsign(cookie) for cookie in (first, second, third))
    assert first_id and second_id and third_id
    log = [record.getMessage() for record in caplog.records if record.name == "fastapi_sessions"]
    first_log, second_log, third_log = (
        signer.log_id(unsigned.session_id) for unsigned in (first_id, second_id, third_id)
    )
    assert f"session created: {first_log}" in log
    assert f"session regenerated: {first_log} -> {second_log}" in log
    assert f"session expired: {second_log} (idle timeout)" in log
    assert f"session created: {third_log}" in log
    assert f"session destroyed: {third_log}" in log
    assert "session rejected: cookie is malformed or its signature does not verify" in log
    assert re.fullmatch(r"[0-9a-f]{16}", first_log)
    assert first_log != signer.log_id(first_id.session_id + "x")


# Cookie attributes and startup validation.


def test_default_cookie_attributes(h: Harness) -> None:
    (cookie,) = parsed_cookies(h.browser().post("/write", params={"theme": "dark"}))
    assert cookie.name == "__Host-session"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", cookie.value)
    assert cookie.attributes == {
        "max-age": str(14 * 24 * 3600),
        "path": "/",
        "secure": "",
        "httponly": "",
        "samesite": "Lax",
    }


def test_cookie_without_https_only(backend: Backend) -> None:
    with harness(backend, https_only=False) as h:
        (cookie,) = parsed_cookies(h.browser().post("/write", params={"theme": "dark"}))
    assert cookie.name == "session"
    assert "secure" not in cookie.attributes
    assert cookie.attributes["httponly"] == "" and cookie.attributes["samesite"] == "Lax"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cookie_name": "__Host-sid", "domain": "example.com"}, "forbids SESSION_DOMAIN"),
        ({"cookie_name": "__Host-sid", "path": "/app"}, "needs SESSION_PATH=/"),
        ({"cookie_name": "__Host-sid", "https_only": False}, "needs SESSION_HTTPS_ONLY=true"),
        ({"path": "/app"}, "needs SESSION_PATH=/"),  # the default name is __Host-session
        ({"domain": "example.com"}, "forbids SESSION_DOMAIN"),
        ({"cookie_name": "__Secure-sid", "https_only": False}, "__Secure- prefix"),
        ({"same_site": "none", "https_only": False}, "SESSION_SAME_SITE=none"),
        ({"cookie_name": "sid;Domain=evil.example"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid\r\nSet-Cookie: x=1"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid\n"}, "SESSION_COOKIE_NAME"),
        ({"cookie_name": "sid", "domain": "example.com; Path=/"}, "SESSION_DOMAIN"),
        ({"cookie_name": "sid", "domain": "example.com\r\nX: 1"}, "SESSION_DOMAIN"),
        ({"cookie_name": "sid", "path": "/app;Domain=x"}, "SESSION_PATH"),
        ({"cookie_name": "sid", "path": "/app\n"}, "SESSION_PATH"),
        ({"cookie_name": "sid", "path": "/app\r"}, "SESSION_PATH"),
    ],
)
def test_unsafe_cookie_settings_are_refused_at_startup(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SessionConfigError, match=re.escape(message)):
        SessionSettings.load(secret_key=SECRET, **overrides)


def test_caching_headers(h: Harness) -> None:
    browser = h.browser()
    public = browser.get("/public")
    assert "vary" not in public.headers and "cache-control" not in public.headers
    assert h.store.io == 0

    writing = browser.post("/write", params={"theme": "dark"})
    assert writing.headers["vary"] == "Cookie"
    assert writing.headers["cache-control"] == "no-store"

    reading = browser.get("/read")
    assert reading.headers["vary"] == "Cookie"
    assert "cache-control" not in reading.headers
    assert parsed_cookies(reading) == []

    denied = browser.get("/me")
    assert denied.status_code == 401 and denied.headers["vary"] == "Cookie"

    io = h.store.io
    assert browser.get("/public").headers.get("vary") is None
    assert h.store.io == io


def test_caching_headers_override_the_app_when_a_cookie_is_set(h: Harness) -> None:
    browser = h.browser()
    setting = browser.post("/cached", params={"theme": "dark"})
    assert parsed_cookies(setting) != []
    assert setting.headers.get_list("cache-control") == ["no-store"]
    assert setting.headers["vary"] == "Accept-Encoding, Cookie"
    reading = browser.post("/cached")
    assert parsed_cookies(reading) == []
    assert reading.headers["vary"] == "Accept-Encoding, Cookie"
    assert reading.headers["cache-control"] == "public, max-age=3600"  # the app's choice for a page without a cookie


def test_set_cookie_stays_under_4096_bytes(backend: Backend) -> None:
    long_path = "/" + "p" * 200
    with harness(backend, cookie_name="s" * 100, path=long_path, domain="d" * 60 + ".example.com") as h:
        browser = h.browser()
        responses = [
            browser.post("/write", params={"theme": "t" * 3000}),
            browser.post("/login", params={"uid": "u" * 1000}),
            browser.post("/logout"),
        ]
    headers = [header for response in responses for header in set_cookies(response)]
    assert len(headers) == 3
    assert all(len(header.encode()) < 4096 for header in headers)


def test_oversized_data_is_a_clear_error(backend: Backend) -> None:
    with harness(backend, max_data_bytes=1024) as h:
        browser = h.browser()
        with pytest.raises(SessionDataTooLargeError, match="SESSION_MAX_DATA_BYTES=1024"):
            browser.post("/write", params={"theme": "x" * 2000})
        assert browser.cookie is None
        assert h.store.writes == 0
        assert browser.post("/write", params={"theme": "small"}).status_code == 200
        with pytest.raises(SessionDataTooLargeError):
            browser.post("/write", params={"theme": "x" * 2000})
        assert browser.get("/read").json()["theme"] == "small"  # the stored session is intact


def test_oversized_data_answers_500(backend: Backend) -> None:
    store = backend.make_store()
    sessions = make_manager(UserSession, store, max_data_bytes=1024)
    with client(build_app(sessions), raise_server_exceptions=False) as test_client:
        browser = Browser(test_client, sessions.cookie_name)
        response = browser.post("/write", params={"theme": "x" * 2000})
    assert response.status_code == 500
    assert parsed_cookies(response) == []


def test_the_id_is_only_taken_from_the_cookie(h: Harness) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    cookie = browser.cookie
    assert cookie is not None
    thief = h.browser()
    assert thief.get("/me", params={"session": cookie}).status_code == 401
    assert thief.get("/me", params={"__Host-session": cookie}).status_code == 401
    assert thief.get("/me", headers={"x-session": cookie}).status_code == 401
    assert thief.get("/me", headers={"authorization": f"Bearer {cookie}"}).status_code == 401
    assert thief.cookie is None


def test_two_session_cookies_are_no_session(h: Harness) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    cookie = browser.cookie
    other = h.browser()
    other.post("/login", params={"uid": "mallory"})
    for header in (
        f"__Host-session={cookie}; __Host-session={other.cookie}",
        f"__Host-session={cookie}; __Host-session={cookie}",
        f"__Host-session={other.cookie}; theme=x; __Host-session={cookie}",
    ):
        response = h.browser().get("/me", headers={"cookie": header})
        assert response.status_code == 401
    assert browser.get("/me").json()["user_id"] == "alice"  # neither session was harmed


# Encryption at rest.


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_encryption_at_rest_and_key_rotation(backend: Backend) -> None:
    pytest.importorskip("cryptography")
    first, second = _fernet_key(), _fernet_key()
    clock = FakeClock()
    store = backend.make_store()
    shared = CountingStore(store, lifecycle=False)

    def manager(keys: list[str]) -> SessionManager[UserSession]:
        settings = SessionSettings(secret_key=SECRET, encryption_keys=keys)
        return SessionManager(UserSession, settings=settings, store=shared, clock=clock)

    old, ring, new_only = manager([first]), manager([second, first]), manager([second])
    apps = {"/old": build_app(old), "/ring": build_app(ring), "/new": build_app(new_only)}
    with serve_together(store, apps) as test_client:
        browser = Browser(test_client, old.cookie_name)
        browser.post("/old/write", params={"theme": "ultraviolet-theme"})
        browser.post("/old/login", params={"uid": "user-4821", "role": "auditor"})
        cookie = browser.cookie
        assert cookie is not None
        record = stored(test_client, store, old, cookie)
        assert record is not None
        raw = repr(record.data)
        for plaintext in ("ultraviolet-theme", "user-4821", "auditor"):
            assert plaintext not in raw

        assert browser.get("/ring/me").json()["theme"] == "ultraviolet-theme"
        assert browser.post("/ring/write", params={"theme": "infrared-theme"}).status_code == 200
        assert "infrared-theme" not in repr(stored(test_client, store, old, cookie).data)
        assert browser.get("/old/read").json()["theme"] == "light"  # written with the new key, which old lacks

        response = browser.get("/new/read")  # the remaining fields were written with the removed key
        assert response.status_code == 200
        assert response.json() == {"user_id": None, "roles": [], "theme": "light", "pending": []}
        assert browser.get("/new/me").status_code == 401


# CSRF and flash.


def test_csrf_guard(backend: Backend) -> None:
    with harness(backend, csrf_trusted_origins=["https://app.example.com"]) as h:
        browser = h.browser()
        token = browser.get("/csrf").json()["token"]
        assert len(token) >= 32

        assert browser.get("/transfer").status_code == 200
        denied = browser.post("/transfer")
        assert denied.status_code == 403
        assert denied.json() == {"detail": "CSRF check failed: missing or wrong token"}
        assert browser.post("/transfer", headers={"x-csrf-token": "wrong"}).status_code == 403
        assert browser.post("/transfer", headers={"x-csrf-token": token}).status_code == 200
        assert browser.request("DELETE", "/transfer", headers={"x-csrf-token": token}).status_code == 200
        assert browser.post("/transfer", data={"csrf_token": token}).status_code == 200
        assert browser.post("/transfer", files={"csrf_token": (None, token)}).status_code == 200
        assert browser.post("/transfer", data={"csrf_token": "wrong"}).status_code == 403

        for origin in ("https://evil.example", "null", "http://testserver", "https://testserver.evil.example"):
            response = browser.post("/transfer", headers={"x-csrf-token": token, "origin": origin})
            assert response.status_code == 403, origin
            assert response.json() == {"detail": "CSRF check failed: cross-origin request"}
        cross_referer = {"x-csrf-token": token, "referer": "https://evil.example/page"}
        assert browser.post("/transfer", headers=cross_referer).status_code == 403
        for origin in ("https://testserver", "https://app.example.com"):
            response = browser.post("/transfer", headers={"x-csrf-token": token, "origin": origin})
            assert response.status_code == 200, origin
        same_referer = {"x-csrf-token": token, "referer": "https://testserver/form"}
        assert browser.post("/transfer", headers=same_referer).status_code == 200

        # Another session's token is no good here.
        other_token = h.browser().get("/csrf").json()["token"]
        assert other_token != token
        assert browser.post("/transfer", headers={"x-csrf-token": other_token}).status_code == 403

        # Logging in rotates the token.
        browser.post("/login", params={"uid": "alice"})
        assert browser.post("/transfer", headers={"x-csrf-token": token}).status_code == 403
        rotated = browser.get("/csrf").json()["token"]
        assert rotated != token
        assert browser.post("/transfer", headers={"x-csrf-token": rotated}).status_code == 200


def test_csrf_without_a_session_is_refused(h: Harness) -> None:
    response = h.browser().post("/transfer", headers={"x-csrf-token": "anything"})
    assert response.status_code == 403
    assert h.store.writes == 0


def test_flash_is_shown_once(h: Harness) -> None:
    browser = h.browser()
    assert browser.post("/flash", params={"message": "saved", "category": "success"}).status_code == 200
    assert browser.get("/flashes").json() == [["success", "saved"]]
    assert browser.get("/flashes").json() == []
    browser.post("/flash", params={"message": "one", "category": "info"})
    browser.post("/flash", params={"message": "two", "category": "warning"})
    assert browser.get("/flashes").json() == [["info", "one"], ["warning", "two"]]
    assert browser.get("/flashes").json() == []
