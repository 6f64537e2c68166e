"""Two managers sharing a secret and a store (a public site and its admin area) never accept each other's cookies."""

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionManager, SessionSettings

SECRET = "namespaces-test-secret-0123456789-abcdefghijklmn"


def site(sessions: SessionManager[AuthSession]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)

    @app.post("/login/{user_id}")
    async def login(user_id: str, session: Annotated[AuthSession, Depends(sessions)]) -> None:
        session.login(user_id, roles={"admin"})

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> str | None:
        return session.user_id

    return app


@pytest.fixture
def two_sites() -> Iterator[tuple[TestClient, TestClient, SessionManager[AuthSession], SessionManager[AuthSession]]]:
    store = MemoryStore()
    public = SessionManager(AuthSession, settings=SessionSettings(secret_key=SECRET), store=store)
    admin = SessionManager(
        AuthSession, settings=SessionSettings(secret_key=SECRET, cookie_name="__Host-admin"), store=store
    )
    with (
        TestClient(site(public), base_url="https://testserver") as public_client,
        TestClient(site(admin), base_url="https://testserver") as admin_client,
    ):
        yield public_client, admin_client, public, admin


def test_a_cookie_of_one_manager_is_anonymous_to_the_other(
    two_sites: tuple[TestClient, TestClient, SessionManager[AuthSession], SessionManager[AuthSession]],
) -> None:
    public_client, admin_client, public, admin = two_sites
    public_client.post("/login/ann")
    assert public_client.get("/me").json() == "ann"
    # The public site's cookie, presented to the admin area under the admin area's cookie name.
    admin_client.cookies.set(admin.cookie_name, public_client.cookies[public.cookie_name])
    assert admin_client.get("/me").status_code == 401


def test_each_manager_stores_its_sessions_under_keys_of_its_own(
    two_sites: tuple[TestClient, TestClient, SessionManager[AuthSession], SessionManager[AuthSession]],
) -> None:
    _, _, public, admin = two_sites
    assert public.signer.namespace == "session" and admin.signer.namespace == "admin"
    assert public.signer.store_key("A" * 43) != admin.signer.store_key("A" * 43)


def test_an_explicit_namespace_lets_two_cookie_names_share_sessions() -> None:
    store = MemoryStore()
    old_settings = SessionSettings(secret_key=SECRET, namespace="shop", cookie_name="sid")
    new_settings = SessionSettings(secret_key=SECRET, namespace="shop", cookie_name="__Host-sid")
    old = SessionManager(AuthSession, settings=old_settings, store=store)
    new = SessionManager(AuthSession, settings=new_settings, store=store)
    with (
        TestClient(site(old), base_url="https://testserver") as before,
        TestClient(site(new), base_url="https://testserver") as after,
    ):
        before.post("/login/ann")
        after.cookies.set(new.cookie_name, before.cookies[old.cookie_name])
        assert after.get("/me").json() == "ann"
