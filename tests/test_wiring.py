"""Wiring a manager into an app: settings read at startup, lifespans, `configure`, several managers in one app."""

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionConfigError, SessionManager, SessionSettings
from tests.support import FakeClock, client, settings

ROOT = Path(__file__).resolve().parent.parent

# An app module as an application writes it: the manager, its guards and `install` at import time.
APP_MODULE = """
from typing import Annotated

from fastapi import Depends, FastAPI

from fastapi_sessions import AuthSession, SessionManager

sessions = SessionManager(AuthSession)
app = FastAPI()
sessions.install(app)


@app.post("/login")
async def login(session: Annotated[AuthSession, Depends(sessions)]) -> None:
    session.login("ann", roles={"admin"})


@app.get("/me")
async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> str | None:
    return session.user_id


@app.get("/admin", dependencies=[Depends(sessions.require_roles("admin"))])
async def admin() -> str:
    return "admin"


@app.post("/comment")
async def comment(session: Annotated[AuthSession, Depends(sessions.require_csrf)]) -> None:
    pass
"""

# Run in a fresh interpreter with no SESSION_* variable: what does importing, rendering OpenAPI and starting do?
PROBE = """
import json
import os

from fastapi.testclient import TestClient

from fastapi_sessions import SessionConfigError

import lifecycle_app  # no SESSION_* variable set

report = {
    "cookie_name": lifecycle_app.sessions.cookie_name,
    "schemes": lifecycle_app.app.openapi()["components"]["securitySchemes"],
}
try:
    with TestClient(lifecycle_app.app):
        report["started"] = True
except SessionConfigError as error:
    report["startup_error"] = str(error)
os.environ["SESSION_SECRET_KEY"] = "a-lifecycle-test-secret-0123456789-abcdefghij"
with TestClient(lifecycle_app.app, base_url="https://testserver") as browser:
    report["anonymous"] = browser.get("/me").status_code
    browser.post("/login")
    report["logged_in"] = [browser.get("/me").json(), browser.get("/admin").status_code]
print(json.dumps(report))
"""


def run_probe(tmp_path: Path, **env: str) -> dict[str, object]:
    (tmp_path / "lifecycle_app.py").write_text(APP_MODULE)
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
    clean["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no .env file
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return report


def test_an_app_module_imports_without_any_session_variable_and_fails_at_startup(tmp_path: Path) -> None:
    report = run_probe(tmp_path)
    assert report["cookie_name"] == "__Host-session"
    schemes = report["schemes"]
    assert isinstance(schemes, dict) and list(schemes) == ["SessionCookie", "CsrfToken"]  # the app has a CSRF form
    assert {**schemes["SessionCookie"], "description": ""} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-session",
        "description": "",
    }
    assert "started" not in report
    assert report["startup_error"] == "invalid session settings:\n  - SESSION_SECRET_KEY: required but not set"
    assert report["anonymous"] == 401
    assert report["logged_in"] == ["ann", 200]


def test_before_startup_the_cookie_name_comes_from_the_environment_without_the_secret(tmp_path: Path) -> None:
    report = run_probe(tmp_path, SESSION_COOKIE_NAME="sid", SESSION_HTTPS_ONLY="false")
    assert report["cookie_name"] == "sid"
    schemes = report["schemes"]
    assert isinstance(schemes, dict) and list(schemes) == ["SessionCookie-sid", "CsrfToken"]
    assert schemes["SessionCookie-sid"]["name"] == "sid"


# In this process: the environment is cleaned for each test.


@pytest.fixture(autouse=True)
def no_session_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)


class RecordingStore(MemoryStore):
    """A memory store that notes when it is opened and closed."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def open(self) -> None:
        self.events.append("store opened")

    async def close(self) -> None:
        self.events.append("store closed")


def site(sessions: SessionManager[AuthSession], app: FastAPI | None = None, prefix: str = "") -> FastAPI:
    """Routes over ``sessions`` under ``prefix``: log in (``?role=``), who am I, and an admin-only page."""
    app = app if app is not None else FastAPI()
    sessions.install(app)

    @app.post(f"{prefix}/login/{{user_id}}")
    async def login(user_id: str, session: Annotated[AuthSession, Depends(sessions)], role: str = "") -> None:
        session.login(user_id, roles={role} if role else set())

    @app.get(f"{prefix}/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> str | None:
        return session.user_id

    @app.get(f"{prefix}/panel", dependencies=[Depends(sessions.require_roles("admin"))])
    async def panel() -> str:
        return "panel"

    return app


def test_a_missing_secret_fails_when_the_app_starts_naming_the_variable() -> None:
    app = site(SessionManager(AuthSession))  # creating, decorating and installing read no setting
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY: required but not set"), TestClient(app):
        pass


def test_the_cookie_name_needs_no_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = SessionManager(AuthSession)
    assert sessions.cookie_name == "__Host-session"
    monkeypatch.setenv("SESSION_COOKIE_NAME", "__Secure-sid")
    assert sessions.cookie_name == "__Secure-sid"
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY"):
        sessions.signer  # noqa: B018  # the signer needs the secret
    assert not hasattr(sessions._core, "no_such_part")


def test_settings_are_read_when_the_app_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = SessionManager(AuthSession)
    app = site(sessions)
    assert app.openapi()["components"]["securitySchemes"]["SessionCookie"]["name"] == "__Host-session"
    app.openapi_schema = None
    monkeypatch.setenv("SESSION_SECRET_KEY", settings().secret_key.get_secret_value())
    monkeypatch.setenv("SESSION_COOKIE_NAME", "__Host-late")
    with client(app) as browser:
        browser.post("/login/ann")
        assert list(browser.cookies.keys()) == ["__Host-late"]
        assert browser.get("/me").json() == "ann"
    assert sessions.settings.cookie_name == "__Host-late"


def test_configure_before_startup_hands_the_manager_a_tests_settings_and_store() -> None:
    sessions = SessionManager(AuthSession)  # as an app module makes it
    app = site(sessions)
    store = MemoryStore()
    sessions.configure(settings=settings(cookie_name="__Host-test"), store=store)
    assert sessions.store is store and sessions.cookie_name == "__Host-test"
    with client(app) as browser:
        browser.post("/login/ann", params={"role": "admin"})
        assert browser.get("/me").json() == "ann"
        assert browser.get("/panel").status_code == 200
        assert list(browser.cookies.keys()) == ["__Host-test"]
        assert app.openapi()["components"]["securitySchemes"]["SessionCookie-test"]["name"] == "__Host-test"
    assert len(store) == 1


def test_settings_given_as_a_function_are_built_at_startup() -> None:
    calls: list[str] = []

    def admin_settings() -> SessionSettings:
        calls.append("built")
        return settings(cookie_name="__Host-admin")

    sessions = SessionManager(AuthSession, settings=admin_settings)
    app = site(sessions)
    assert calls == []
    with client(app) as browser:
        assert calls == ["built"]
        browser.post("/login/ann")
        assert list(browser.cookies.keys()) == ["__Host-admin"]
    assert sessions.cookie_name == "__Host-admin" and calls == ["built"]


def test_settings_given_as_a_function_give_the_cookie_name_before_startup() -> None:
    sessions = SessionManager(AuthSession, settings=lambda: settings(cookie_name="__Host-admin"))
    assert sessions.cookie_name == "__Host-admin"
    assert list(site(sessions).openapi()["components"]["securitySchemes"]) == ["SessionCookie-admin"]


def test_a_settings_function_that_fails_stops_the_startup() -> None:
    sessions = SessionManager(AuthSession, settings=lambda: SessionSettings.load(max_age=0))
    app = site(sessions)
    with pytest.raises(SessionConfigError, match="SESSION_SECRET_KEY: required but not set"), TestClient(app):
        pass


def test_configure_is_refused_while_the_store_is_open_and_allowed_after_shutdown() -> None:
    sessions = SessionManager(AuthSession, settings=settings())
    app = site(sessions)
    with client(app) as browser:
        with pytest.raises(RuntimeError, match="before the app starts"):
            sessions.configure(store=MemoryStore())
        browser.post("/login/ann")
        assert browser.get("/me").json() == "ann"
    second = MemoryStore()
    sessions.configure(store=second)
    with client(app) as browser:
        assert browser.get("/me").status_code == 401  # a new store: the old sessions are not in it
        browser.post("/login/bob")
        assert browser.get("/me").json() == "bob"
    assert sessions.store is second and len(second) == 1


def test_configure_after_reading_the_settings_builds_anew() -> None:
    sessions = SessionManager(AuthSession, settings=settings())
    assert sessions.cookie_name == "__Host-session" and sessions.signer.namespace == "session"
    sessions.configure(settings=settings(cookie_name="__Host-other"))
    assert sessions.settings.cookie_name == "__Host-other" and sessions.signer.namespace == "other"


def test_a_clock_set_before_startup_measures_the_timeouts() -> None:
    sessions = SessionManager(AuthSession, settings=settings(idle_timeout=60, touch_after=10))
    app = site(sessions)
    clock = FakeClock()
    sessions.clock = clock
    with client(app) as browser:
        assert sessions.clock is clock
        browser.post("/login/ann")
        clock.advance(59)
        assert browser.get("/me").status_code == 200
        clock.advance(61)
        assert browser.get("/me").status_code == 401


def test_install_opens_the_store_around_the_apps_own_lifespan() -> None:
    events: list[str] = []
    sessions = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("app startup")
        yield
        events.append("app shutdown")

    app = site(sessions, FastAPI(lifespan=lifespan))
    with client(app) as browser:
        browser.post("/login/ann")
        events.append("request")
    assert events == ["store opened", "app startup", "request", "app shutdown", "store closed"]


def test_async_with_sessions_nested_in_the_apps_own_lifespan() -> None:
    events: list[str] = []
    sessions = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sessions:
            events.append("app startup")
            yield
            events.append("app shutdown")

    app = site(sessions, FastAPI(lifespan=lifespan))
    with client(app) as browser:
        browser.post("/login/ann")
        assert browser.get("/me").json() == "ann"
        events.append("request")
    # install's lifespan opened first; the nested one found the store open, and closing twice is safe.
    assert events == ["store opened", "app startup", "request", "app shutdown", "store closed"]


def test_the_lifespan_argument_opens_and_closes_the_store() -> None:
    events: list[str] = []
    sessions = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))
    app = site(sessions, FastAPI(lifespan=sessions.lifespan))
    with client(app) as browser:
        browser.post("/login/ann")
        assert browser.get("/me").json() == "ann"
    assert events == ["store opened", "store closed"]


def test_a_mounted_app_is_opened_by_the_outer_apps_lifespan() -> None:
    events: list[str] = []
    admin = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))
    outer = FastAPI(lifespan=admin.lifespan)
    outer.mount("/admin", site(admin))  # a mounted app's own lifespan never runs
    with client(outer) as browser:
        assert events == ["store opened"]
        browser.post("/admin/login/root", params={"role": "admin"})
        assert browser.get("/admin/panel").status_code == 200
    assert events == ["store opened", "store closed"]


def test_async_with_outside_an_app_and_opening_twice_or_closing_unopened_is_safe() -> None:
    events: list[str] = []
    sessions = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))
    unconfigured = SessionManager(AuthSession)  # no secret anywhere: closing it reads no setting

    async def scenario() -> None:
        await unconfigured.close()
        await sessions.close()
        async with sessions as opened:
            assert opened is sessions
            await sessions.open()
            assert await sessions.list_sessions("ann") == []
        await sessions.close()

    asyncio.run(scenario())
    assert events == ["store opened", "store closed"]


# Several managers in one app: a public site and an admin area.


@pytest.fixture
def two_areas() -> tuple[FastAPI, SessionManager[AuthSession], SessionManager[AuthSession]]:
    public = SessionManager(AuthSession, settings=settings(), store=MemoryStore())
    admin = SessionManager(AuthSession, settings=settings(cookie_name="__Host-admin"), store=MemoryStore())
    app = site(public)
    site(admin, app, prefix="/admin")
    return app, public, admin


def test_a_cookie_of_one_manager_is_anonymous_to_the_other(
    two_areas: tuple[FastAPI, SessionManager[AuthSession], SessionManager[AuthSession]],
) -> None:
    app, public, admin = two_areas
    with client(app) as browser:
        browser.post("/login/ann", params={"role": "admin"})
        assert list(browser.cookies.keys()) == ["__Host-session"]
        assert browser.get("/me").json() == "ann"
        assert browser.get("/panel").status_code == 200
        assert browser.get("/admin/me").status_code == 401
        assert browser.get("/admin/panel").status_code == 401
        # The public cookie's value under the admin area's name: signed for another namespace.
        browser.cookies.set(admin.cookie_name, browser.cookies[public.cookie_name])
        assert browser.get("/admin/me").status_code == 401


def test_each_managers_guards_apply_to_its_own_routes(
    two_areas: tuple[FastAPI, SessionManager[AuthSession], SessionManager[AuthSession]],
) -> None:
    app, _, _ = two_areas
    with client(app) as browser:
        browser.post("/admin/login/root")  # no admin role
        assert browser.get("/admin/me").json() == "root"
        assert browser.get("/admin/panel").status_code == 403
        assert browser.get("/me").status_code == 401
        browser.post("/login/ann", params={"role": "admin"})  # the public site's admin role
        assert browser.get("/panel").status_code == 200
        assert browser.get("/admin/panel").status_code == 403
        assert sorted(browser.cookies.keys()) == ["__Host-admin", "__Host-session"]


def test_several_managers_show_distinct_openapi_schemes(
    two_areas: tuple[FastAPI, SessionManager[AuthSession], SessionManager[AuthSession]],
) -> None:
    app, _, _ = two_areas
    schema = app.openapi()
    schemes = schema["components"]["securitySchemes"]
    assert {name: scheme["name"] for name, scheme in schemes.items()} == {
        "SessionCookie": "__Host-session",
        "SessionCookie-admin": "__Host-admin",
    }
    assert schema["paths"]["/me"]["get"]["security"] == [{"SessionCookie": []}]
    assert schema["paths"]["/admin/me"]["get"]["security"] == [{"SessionCookie-admin": []}]
    assert schema["paths"]["/admin/panel"]["get"]["security"] == [{"SessionCookie-admin": []}]


def test_scheme_name_names_the_openapi_scheme() -> None:
    sessions = SessionManager(AuthSession, settings=settings(), scheme_name="StaffCookie")
    schema = site(sessions).openapi()
    assert list(schema["components"]["securitySchemes"]) == ["StaffCookie"]
    assert schema["paths"]["/me"]["get"]["security"] == [{"StaffCookie": []}]


def test_installing_a_manager_twice_installs_it_once() -> None:
    events: list[str] = []
    sessions = SessionManager(AuthSession, settings=settings(), store=RecordingStore(events))
    app = site(sessions)
    sessions.install(app)
    with client(app) as browser:
        response = browser.post("/login/ann")
        assert len(response.headers.get_list("set-cookie")) == 1
    assert events == ["store opened", "store closed"]
