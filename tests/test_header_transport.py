"""The header transport (``SESSION_TRANSPORT=header`` or ``both``) over HTTP, as a mobile app or a CLI uses it."""

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from fastapi_sessions import MemoryStore
from tests.support import Backend, Browser, Harness, UserSession, serve, set_cookies

HEADER = "X-Auth-Token"


class TokenClient:
    """A client without a cookie jar: it keeps the token of the response header and sends it back.

    Before it has a token it sends the header empty, which is how ``SESSION_TRANSPORT=both`` tells
    it from a browser.
    """

    def __init__(self, test_client: TestClient, header: str = HEADER) -> None:
        self.client = test_client
        self.header = header
        self.token: str | None = None

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str | bytes] | None = None, **kwargs: Any
    ) -> Response:
        given = {"user-agent": "cli/1.0", self.header: self.token or "", **(headers or {})}
        sent = {name.encode(): value if isinstance(value, bytes) else value.encode() for name, value in given.items()}
        self.client.cookies.clear()
        response = self.client.request(method, url, headers=sent, **kwargs)
        self.client.cookies.clear()
        if self.header in response.headers:
            self.token = response.headers[self.header] or None  # empty: the session has ended
        return response

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def h() -> Iterator[Harness[UserSession]]:
    with serve(Backend("memory", MemoryStore), UserSession, transport="header") as value:
        yield value


@pytest.fixture
def both() -> Iterator[Harness[UserSession]]:
    with serve(Backend("memory", MemoryStore), UserSession, transport="both") as value:
        yield value


def test_a_session_lives_in_the_header(backend: Backend) -> None:
    with serve(backend, UserSession, transport="header") as h:
        app = TokenClient(h.client)
        assert app.get("/me").status_code == 401

        login = app.post("/login", params={"uid": "alice"})
        assert login.status_code == 200
        assert set_cookies(login) == []
        first = app.token
        assert first is not None and len(first) == 87
        assert login.headers["cache-control"] == "no-store"
        assert login.headers["vary"] == HEADER
        assert h.record(first) is not None

        me = app.get("/me")
        assert me.json()["user_id"] == "alice"
        assert HEADER not in me.headers  # nothing changed: no new token
        assert me.headers["vary"] == HEADER

        assert app.post("/regenerate").status_code == 200
        second = app.token
        assert second is not None and second != first
        assert h.record(first) is None
        assert app.get("/me").json()["user_id"] == "alice"
        assert app.get("/me", headers={HEADER: first}).status_code == 401

        logout = app.post("/logout")
        assert logout.headers[HEADER] == ""  # the documented end of a header session
        assert set_cookies(logout) == []
        assert app.token is None
        assert h.record(second) is None
        assert app.get("/me", headers={HEADER: second}).status_code == 401


def test_both_transports_side_by_side(backend: Backend) -> None:
    with serve(backend, UserSession, transport="both") as h:
        browser = h.login("bob")
        assert browser.cookie is not None
        app = TokenClient(h.client)
        login = app.post("/login", params={"uid": "alice"})
        assert set_cookies(login) == [] and app.token is not None
        assert login.headers["vary"] == f"Cookie, {HEADER}"

        assert browser.get("/me").json()["user_id"] == "bob"
        assert app.get("/me").json()["user_id"] == "alice"
        # The cookie's token works in the header too: one token, two ways to carry it.
        assert TokenClient(h.client).get("/me", headers={HEADER: browser.cookie}).json()["user_id"] == "bob"
        # Both at once is ambiguous: no session, and neither is touched.
        assert browser.get("/me", headers={HEADER: app.token}).status_code == 401
        assert app.get("/me").json()["user_id"] == "alice"
        assert browser.get("/me").json()["user_id"] == "bob"

        # A client that sends no header at all is a browser to `both`: it gets a cookie.
        silent = h.client.post("/login", params={"uid": "carol"})
        h.client.cookies.clear()
        assert HEADER not in silent.headers and len(set_cookies(silent)) == 1

        # Logging out over the cookie expires the cookie and sends no header.
        logout = browser.post("/logout")
        assert HEADER not in logout.headers
        assert set_cookies(logout)[0].startswith(f"{h.sessions.cookie_name}=; Max-Age=0")
        assert app.post("/logout").headers[HEADER] == ""


def test_both_sent_is_logged(both: Harness[UserSession], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastapi_sessions")
    browser = both.login("bob")
    app = TokenClient(both.client)
    app.post("/login", params={"uid": "alice"})
    assert app.token is not None
    response = browser.post("/write", params={"theme": "dark"}, headers={HEADER: app.token})
    assert response.status_code == 200 and response.json()["user_id"] is None
    assert f"session rejected: both a session cookie and the {HEADER} header were sent" in caplog.messages
    # The anonymous session written there answers in the header, the way the request came.
    assert HEADER in response.headers and set_cookies(response) == []


TAMPERED: dict[str, str | bytes] = {
    "garbage": "garbage",
    "empty": "",
    "blank": " ",
    "right-length": "a" * 87,
    "oversized": "x" * 10_000,
    "utf-8": "é".encode() * 44,
    "object": '{"$ne": null}',
    "bearer": "Bearer abc",
}


@pytest.mark.parametrize("value", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_bad_header_token_is_anonymous(h: Harness[UserSession], value: str | bytes) -> None:
    app = TokenClient(h.client)
    assert app.get("/me", headers={HEADER: value}).status_code == 401
    read = app.get("/read", headers={HEADER: value})
    assert read.status_code == 200 and read.json()["user_id"] is None
    assert HEADER not in read.headers
    assert h.store.io == 0


def test_a_tampered_header_token_is_logged(h: Harness[UserSession], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastapi_sessions")
    app = TokenClient(h.client)
    app.post("/login", params={"uid": "alice"})
    assert app.token is not None
    tampered = app.token[:-1] + ("A" if app.token[-1] != "A" else "B")
    assert app.get("/me", headers={HEADER: tampered}).status_code == 401
    assert f"session rejected: {HEADER} header is malformed or its signature does not verify" in caplog.messages

    raw = h.client.get("/me", headers=[(HEADER, app.token), (HEADER, app.token)])
    assert raw.status_code == 401
    assert f"session rejected: 2 {HEADER} headers in one request" in caplog.messages
    assert app.get("/me").json()["user_id"] == "alice"


def test_the_cookie_transport_ignores_the_header() -> None:
    with serve(Backend("memory", MemoryStore), UserSession) as h:
        browser = h.login("alice")
        assert browser.cookie is not None
        assert TokenClient(h.client).get("/me", headers={HEADER: browser.cookie}).status_code == 401
        assert browser.get("/me").headers["vary"] == "Cookie"


def test_the_header_transport_ignores_the_cookie(h: Harness[UserSession]) -> None:
    app = TokenClient(h.client)
    app.post("/login", params={"uid": "alice"})
    assert app.token is not None
    cookie_client = Browser(h.client, h.sessions.cookie_name)
    cookie_client.cookie = app.token
    assert cookie_client.get("/me").status_code == 401


def test_a_custom_header_name() -> None:
    with serve(Backend("memory", MemoryStore), UserSession, transport="header", header_name="X-Session") as h:
        app = TokenClient(h.client, "X-Session")
        login = app.post("/login", params={"uid": "alice"})
        assert app.token is not None and HEADER not in login.headers
        assert login.headers["vary"] == "X-Session"
        assert app.get("/me").json()["user_id"] == "alice"


def test_csrf_does_not_apply_to_header_requests(both: Harness[UserSession]) -> None:
    app = TokenClient(both.client)
    app.post("/login", params={"uid": "alice"})
    assert app.post("/transfer").status_code == 200
    assert app.post("/transfer", headers={"origin": "https://evil.example"}).status_code == 200

    browser = both.login("bob")
    denied = browser.post("/transfer")
    assert denied.status_code == 403
    assert denied.json() == {"detail": "CSRF check failed: missing or wrong token"}
    token = browser.get("/csrf").json()["token"]
    assert browser.post("/transfer", headers={"x-csrf-token": token}).status_code == 200


def test_a_websocket_handshake_can_carry_the_header(h: Harness[UserSession]) -> None:
    app = TokenClient(h.client)
    app.post("/login", params={"uid": "alice"})
    assert app.token is not None
    with h.client.websocket_connect("wss://testserver/ws", headers={HEADER: app.token}) as websocket:
        assert websocket.receive_json() == {"user_id": "alice"}
