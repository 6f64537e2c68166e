"""The user's flow through HTTP (login, read, role check, cart, logout) on every store."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI

from fastapi_sessions import SessionManager
from tests.support import Backend, CountingStore, UserSession, build_app, client, make_manager, set_cookies


class CartSession(UserSession):
    cart: list[int] = []
    prefs: dict[str, str] = {}


def cart_routes(sessions: SessionManager[CartSession]) -> APIRouter:
    router = APIRouter()
    Session = Annotated[CartSession, Depends(sessions)]

    @router.post("/cart/{item}")
    async def add(item: int, session: Session) -> list[int]:
        session.cart.append(item)
        return session.cart

    @router.post("/prefs/{name}/{value}")
    async def pref(name: str, value: str, session: Session) -> dict[str, str]:
        session.prefs[name] = value
        return session.prefs

    @router.get("/cart")
    async def cart(session: Session) -> list[int]:
        return session.cart

    return router


@pytest.fixture
def store(backend: Backend) -> CountingStore:
    return CountingStore(backend.make_store())


@pytest.fixture
def app(store: CountingStore) -> FastAPI:
    sessions = make_manager(CartSession, store)
    return build_app(sessions, cart_routes(sessions))


def test_login_read_role_logout(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        assert browser.get("/me").status_code == 401
        response = browser.post("/login", params={"uid": "1", "role": "admin", "next": "/me"})
        assert response.status_code == 200  # followed the redirect at once, with the new cookie
        assert response.json() == {"user_id": "1", "roles": ["admin"], "theme": "light", "pending": []}
        [redirect] = response.history
        assert redirect.status_code == 303
        [cookie] = set_cookies(redirect)
        assert cookie.startswith("__Host-session=")
        assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert browser.get("/admin").json()["roles"] == ["admin"]

        old_cookie = browser.cookies["__Host-session"]
        assert browser.post("/logout").json() == {"ok": True}
        assert browser.get("/me").status_code == 401
        browser.cookies.set("__Host-session", old_cookie)
        assert browser.get("/me").status_code == 401


def test_roles_answer_403_for_a_user_without_them(app: FastAPI) -> None:
    with client(app) as browser:
        assert browser.get("/admin").status_code == 401
        browser.post("/login", params={"uid": "2"})
        response = browser.get("/admin")
        assert response.status_code == 403
        assert response.json() == {"detail": "Not enough privileges"}


def test_in_place_changes_are_saved(app: FastAPI, store: CountingStore) -> None:
    with client(app) as browser:
        assert browser.post("/cart/3").json() == [3]
        assert browser.post("/cart/4").json() == [3, 4]
        browser.post("/prefs/lang/fr")
        assert browser.get("/cart").json() == [3, 4]
        browser.post("/login", params={"uid": "2"})
        assert browser.get("/me").json()["user_id"] == "2"
        assert browser.get("/cart").json() == [3, 4]  # data kept across login


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
