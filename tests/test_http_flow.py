"""The user's flow through HTTP (login, read, role check, cart, logout) on every store."""

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from fastapi_sessions import AuthSession, SessionManager
from tests.support import Backend, CountingStore, client, make_manager, set_cookies


class UserSession(AuthSession):
    theme: str = "light"
    cart: list[int] = []
    prefs: dict[str, str] = {}


def build_app(sessions: SessionManager[UserSession]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[UserSession, Depends(sessions)]

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Session) -> RedirectResponse:
        session.login(user_id, roles={"admin"} if user_id == "1" else set())
        return RedirectResponse("/me", status_code=303)

    @app.get("/me")
    async def me(session: Annotated[UserSession, Depends(sessions.require_auth)]) -> dict[str, object]:
        return {"user": session.user_id, "roles": sorted(session.roles), "cart": session.cart}

    @app.get("/admin", dependencies=[Depends(sessions.require_roles("admin"))])
    async def admin() -> dict[str, str]:
        return {"area": "admin"}

    @app.post("/cart/{item}")
    async def add(item: int, session: Session) -> list[int]:
        session.cart.append(item)
        return session.cart

    @app.post("/prefs/{name}/{value}")
    async def pref(name: str, value: str, session: Session) -> dict[str, str]:
        session.prefs[name] = value
        return session.prefs

    @app.get("/cart")
    async def cart(session: Session) -> list[int]:
        return session.cart

    @app.post("/logout")
    async def logout(session: Session) -> dict[str, bool]:
        session.logout()
        return {"ok": True}

    return app


@pytest.fixture
def store(backend: Backend) -> CountingStore:
    return CountingStore(backend.make_store())


@pytest.fixture
def app(store: CountingStore) -> FastAPI:
    return build_app(make_manager(UserSession, store))


def test_login_read_role_logout(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        assert browser.get("/me").status_code == 401
        response = browser.post("/login/1")
        assert response.status_code == 200  # followed the redirect at once, with the new cookie
        assert response.json() == {"user": "1", "roles": ["admin"], "cart": []}
        [redirect] = response.history
        assert redirect.status_code == 303
        [cookie] = set_cookies(redirect)
        assert cookie.startswith("__Host-session=")
        assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert browser.get("/admin").json() == {"area": "admin"}

        old_cookie = browser.cookies["__Host-session"]
        assert browser.post("/logout").json() == {"ok": True}
        assert browser.get("/me").status_code == 401
        browser.cookies.set("__Host-session", old_cookie)
        assert browser.get("/me").status_code == 401


def test_roles_answer_403_for_a_user_without_them(app: FastAPI) -> None:
    with client(app) as browser:
        assert browser.get("/admin").status_code == 401
        browser.post("/login/2")
        response = browser.get("/admin")
        assert response.status_code == 403
        assert response.json() == {"detail": "Not enough privileges"}


def test_in_place_changes_are_saved(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        assert browser.post("/cart/3").json() == [3]
        assert browser.post("/cart/4").json() == [3, 4]
        browser.post("/prefs/lang/fr")
        assert browser.get("/cart").json() == [3, 4]
        browser.post("/login/2")
        assert browser.get("/me").json()["cart"] == [3, 4]  # data kept across login


def test_reads_write_nothing(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        browser.post("/cart/1")
        store.reset()
        for _ in range(5):
            response = browser.get("/cart")
            assert response.json() == [1]
            assert set_cookies(response) == []
            assert response.headers["vary"] == "Cookie"
        assert store.writes == 0
        assert store.calls == {"load": 5}


def test_an_empty_new_session_is_not_stored(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        response = browser.get("/cart")
        assert response.json() == []
        assert set_cookies(response) == []
        assert store.io == 0  # no cookie: nothing to load, nothing to write


def test_a_write_sends_only_what_changed(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        browser.post("/cart/1")
        assert store.calls == {"create": 1}
        store.reset()
        browser.post("/cart/2")
        assert store.calls == {"load": 1, "update": 1}
        [changes] = store.updates
        assert changes.keys() == {"cart", "_seen"}
        assert changes["cart"] == [1, 2]
