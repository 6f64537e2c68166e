"""Encrypted fields are bound to their session and their field: a value pasted elsewhere does not decrypt.

Someone who can write to the store but has no key (a leaked backup restored, a shared cache) must not
be able to give one session another's roles by copying ciphertexts around.
"""

import asyncio
import base64
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_sessions import AuthSession, MemoryStore, SessionConfigError, SessionManager, SessionSettings

pytest.importorskip("cryptography")

from cryptography.fernet import Fernet

SECRET = "encryption-binding-test-secret-0123456789-abcdef"
KEY = Fernet.generate_key().decode()


class Profile(AuthSession):
    nickname: str = ""


class App:
    def __init__(self, keys: list[str], store: MemoryStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        settings = SessionSettings(secret_key=SECRET, encryption_keys=keys)
        self.sessions = SessionManager(Profile, settings=settings, store=self.store)
        self.app = FastAPI()
        self.sessions.install(self.app)
        sessions = self.sessions

        @self.app.post("/login/{user_id}")
        async def login(user_id: str, session: Annotated[Profile, Depends(sessions)]) -> None:
            session.login(user_id, roles={"admin"} if user_id == "root" else {"reader"})
            session.nickname = f"nick-{user_id}"

        @self.app.get("/admin")
        async def admin(session: Annotated[Profile, Depends(sessions.require_roles("admin"))]) -> str | None:
            return session.user_id

        @self.app.get("/me")
        async def me(session: Annotated[Profile, Depends(sessions)]) -> dict[str, object]:
            return {"user": session.user_id, "roles": sorted(session.roles), "nickname": session.nickname}

    def key_of(self, client: TestClient) -> str:
        unsigned = self.sessions.signer.unsign(client.cookies[self.sessions.cookie_name])
        assert unsigned is not None
        return unsigned.key

    async def raw(self, key: str) -> dict[str, object]:
        record = await self.store.load(key)
        assert record is not None
        return record.data

    async def overwrite(self, key: str, changes: dict[str, object]) -> None:
        await self.store.update(key, changes, ttl=3600)


@pytest.fixture
def site() -> Iterator[tuple[App, TestClient, TestClient]]:
    app = App([KEY])
    with (
        TestClient(app.app, base_url="https://testserver") as admin,
        TestClient(app.app, base_url="https://testserver") as user,
    ):
        admin.post("/login/root")
        user.post("/login/ann")
        yield app, admin, user


def test_an_admins_encrypted_roles_pasted_into_another_session_do_not_decrypt(
    site: tuple[App, TestClient, TestClient],
) -> None:
    app, admin, user = site
    assert user.get("/admin").status_code == 403
    admin_roles = asyncio.run(app.raw(app.key_of(admin)))["roles"]
    asyncio.run(app.overwrite(app.key_of(user), {"roles": admin_roles}))
    assert user.get("/admin").status_code == 401  # the tampered session is no session
    assert user.get("/me").json() == {"user": None, "roles": [], "nickname": ""}
    assert admin.get("/admin").json() == "root"


def test_a_value_moved_to_another_field_of_the_same_session_does_not_decrypt(
    site: tuple[App, TestClient, TestClient],
) -> None:
    app, _, user = site
    data = asyncio.run(app.raw(app.key_of(user)))
    asyncio.run(app.overwrite(app.key_of(user), {"nickname": data["roles"]}))
    assert user.get("/me").json()["user"] is None


def test_nothing_stored_is_plain_but_the_timestamps(site: tuple[App, TestClient, TestClient]) -> None:
    app, _, user = site
    data = asyncio.run(app.raw(app.key_of(user)))
    for name, value in data.items():
        if name in ("_created", "_seen"):
            assert isinstance(value, float)
            continue
        assert isinstance(value, str) and value.startswith("v2."), name
        encoded = value.removeprefix("v2.")
        token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        # The JSON of the stored values, at least ten bytes each: a random ciphertext holds none of them.
        for plaintext in (b'"nick-ann"', b'["reader"]'):
            assert plaintext not in token, name


def test_key_rotation_reads_old_fields_and_a_retired_key_reads_nothing() -> None:
    old_key, new_key = KEY, Fernet.generate_key().decode()
    before = App([old_key])
    with TestClient(before.app, base_url="https://testserver") as browser:
        browser.post("/login/ann")
        cookie = browser.cookies[before.sessions.cookie_name]
    ring = App([new_key, old_key], before.store)
    with TestClient(ring.app, base_url="https://testserver") as browser:
        browser.cookies[ring.sessions.cookie_name] = cookie
        assert browser.get("/me").json()["nickname"] == "nick-ann"
    retired = App([new_key], before.store)
    with TestClient(retired.app, base_url="https://testserver") as browser:
        browser.cookies[retired.sessions.cookie_name] = cookie
        assert browser.get("/me").json()["user"] is None


@pytest.mark.parametrize(
    "key", ["not-base64!", "c2hvcnQ=", "Dx2PoH_FQk_KE8VO6GdojRJtlTZKXodJ2nEuGzf"], ids=["garbage", "short", "truncated"]
)
def test_a_malformed_key_is_refused_at_startup_naming_the_setting(key: str) -> None:
    site = App([key])  # defining the app reads no setting
    with pytest.raises(SessionConfigError, match="SESSION_ENCRYPTION_KEYS"), TestClient(site.app):
        pass


@pytest.mark.parametrize("value", ["plain text", 42, "v2.*not*base64*", "v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_a_field_that_is_not_a_ciphertext_of_this_ring_is_no_session(
    site: tuple[App, TestClient, TestClient], value: object
) -> None:
    app, _, user = site
    asyncio.run(app.overwrite(app.key_of(user), {"nickname": value}))
    assert user.get("/me").json()["user"] is None
