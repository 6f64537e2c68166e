"""Hostile cookies and headers, on every store: an anonymous session or a 4xx, never a 500, never a write.

Every request here goes through a `CountingStore`, so "no store write" is proven by counting, not
assumed, and each one is timed.
"""

import logging
import random
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from fastapi_sessions import MemoryStore, StoredSession, StoreUnavailableError
from fastapi_sessions.signing import CookieSigner, new_session_id
from tests.support import (
    OTHER_SECRET,
    Backend,
    Browser,
    CountingStore,
    Harness,
    UserSession,
    build_app,
    make_manager,
    parsed_cookies,
    run,
    serve,
)

# A request that only reads a session, whatever its cookie, should take a store round trip at most.
COOKIE = "__Host-session"


ANONYMOUS: dict[str, Any] = {"user_id": None, "roles": [], "theme": "light", "pending": []}


@dataclass
class Attacked(Harness[UserSession]):
    victim: Browser
    """A logged-in user whose session must come through every attack unchanged."""

    def attacker(self) -> Browser:
        return Browser(self.client, self.sessions.cookie_name, "attacker/1.0")


@pytest.fixture
def h(backend: Backend) -> Iterator[Attacked]:
    with serve(backend, UserSession) as served:
        victim = served.browser("victim/1.0")
        victim.post("/login", params={"uid": "victim"})
        victim.post("/write", params={"theme": "dark"})
        served.store.calls.clear()
        yield Attacked(served.sessions, served.store, served.clock, served.client, victim)
        assert victim.get("/me").json() == {"user_id": "victim", "roles": [], "theme": "dark", "pending": []}


@contextmanager
def no_writes(h: Attacked) -> Iterator[None]:
    before = h.store.writes
    yield
    assert h.store.writes == before, h.store.calls


def attack(h: Attacked, cookie: str | bytes, method: str = "GET", path: str = "/read") -> tuple[int, Any]:
    attacker = h.attacker()
    raw = cookie if isinstance(cookie, bytes) else cookie.encode()
    response = attacker.request(method, path, headers={"cookie": COOKIE.encode() + b"=" + raw})
    assert response.status_code < 500
    for set_cookie in parsed_cookies(response):
        assert set_cookie.max_age == 0 and set_cookie.value == ""  # at most an expiry of the bad cookie
    return response.status_code, response.json()


def hostile_cookies(h: Attacked) -> dict[str, str | bytes]:
    """The victim's live cookie, bent every way an attacker might."""
    valid = h.victim.cookie
    assert valid is not None
    session_id, _, signature = valid.partition(".")
    flipped = "A" if signature[5] != "A" else "B"
    return {
        "tampered-signature": f"{session_id}.{signature[:5]}{flipped}{signature[6:]}",
        "tampered-id": f"{'A' if session_id[0] != 'A' else 'B'}{session_id[1:]}.{signature}",
        "truncated": valid[:-1],
        "truncated-to-id": session_id,
        "truncated-to-dot": f"{session_id}.",
        "re-signed-with-another-key": CookieSigner(OTHER_SECRET).sign(session_id),
        "unsigned-random": new_session_id(),
        "signed-unknown-id": h.sessions.signer.sign(new_session_id()),
        "empty": "",
        "quoted": f'"{valid}"',
        "padded": f" {valid}x",
        "two-dots": f"{session_id}.{signature}.{signature}",
        "non-ascii": "s\u00e9ssion-\u2603-\u4f1a\u8bdd".encode(),
        "non-ascii-in-valid": valid[:10].encode() + "\u00e9".encode() + valid[11:].encode(),
        "latin-1-bytes": bytes(range(0x80, 0x100)),
        "oversized": "A" * 5000,
        "valid-plus-tail": valid + "A" * 1000,
        "object-ne": '{"$ne": null}',
        "object-gt": '{"$gt": ""}',
        "object-where": '{"$where": "sleep(10000)"}',
        "array": '["a","b"]',
        "null": "null",
        "sql-or": "' OR '1'='1",
        "sql-drop": "x'; DROP TABLE sessions; --",
        "sql-union": "1 UNION SELECT data FROM sessions--",
        "redis-glob": "*",
        "redis-key-glob": "session:*",
        "redis-command": "x\\r\\nFLUSHALL\\r\\n",
        "path-traversal": "../../../../etc/passwd",
        "regex-bomb": "(a+)+$" + "a" * 40,
        "percent-encoded": "%7B%22%24ne%22%3A%20null%7D",
        "base64url-shaped-injection": ("'--" + "A" * 40)[:43] + "." + "A" * 43,
    }


CASES = [
    "tampered-signature",
    "tampered-id",
    "truncated",
    "truncated-to-id",
    "truncated-to-dot",
    "re-signed-with-another-key",
    "unsigned-random",
    "signed-unknown-id",
    "empty",
    "quoted",
    "padded",
    "two-dots",
    "non-ascii",
    "non-ascii-in-valid",
    "latin-1-bytes",
    "oversized",
    "valid-plus-tail",
    "object-ne",
    "object-gt",
    "object-where",
    "array",
    "null",
    "sql-or",
    "sql-drop",
    "sql-union",
    "redis-glob",
    "redis-key-glob",
    "redis-command",
    "path-traversal",
    "regex-bomb",
    "percent-encoded",
    "base64url-shaped-injection",
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_cookie_is_an_anonymous_session(h: Attacked, case: str) -> None:
    cookie = hostile_cookies(h)[case]
    with no_writes(h):
        status, body = attack(h, cookie)
        assert (status, body) == (200, ANONYMOUS)
        status, body = attack(h, cookie, path="/me")
        assert status == 401 and body == {"detail": "Not authenticated"}
        status, body = attack(h, cookie, method="POST", path="/logout")
        assert status == 200
        status, body = attack(h, cookie, method="POST", path="/transfer")
        assert status == 403
    # Only a value shaped like a cookie this server issues, with a good signature, costs a store read.
    loads = h.store.calls["load"]
    assert loads == (4 if case == "signed-unknown-id" else 0), case


@pytest.mark.parametrize("case", ["tampered-signature", "re-signed-with-another-key", "signed-unknown-id", "object-ne"])
def test_hostile_cookie_on_a_websocket_is_refused(h: Attacked, case: str) -> None:
    cookie = hostile_cookies(h)[case]
    raw = cookie if isinstance(cookie, bytes) else cookie.encode()
    h.client.cookies.clear()
    with no_writes(h), pytest.raises(WebSocketDisconnect) as refused:
        with h.client.websocket_connect(
            "wss://testserver/ws", headers={"cookie": (COOKIE.encode() + b"=" + raw).decode()}
        ):
            pass
    assert refused.value.code == 1008
    # The victim's own cookie opens it.
    assert h.victim.cookie is not None
    with h.client.websocket_connect("wss://testserver/ws", headers={"cookie": f"{COOKIE}={h.victim.cookie}"}) as ws:
        assert ws.receive_json() == {"user_id": "victim"}


def test_a_huge_cookie_header_is_ignored(h: Attacked) -> None:
    valid = h.victim.cookie
    padding = "; ".join(f"c{i}={'x' * 30}" for i in range(1200))
    header = f"{padding}; {COOKIE}={valid}"
    assert len(header) > 40_000
    with no_writes(h):
        response = h.attacker().get("/me", headers={"cookie": header})
        assert response.status_code == 401
    assert h.store.io == 0


def test_many_cookie_headers_are_ignored(h: Attacked) -> None:
    valid = h.victim.cookie
    assert valid is not None
    headers = [("cookie", f"c{i}={'x' * 100}") for i in range(400)] + [("cookie", f"{COOKIE}={valid}")]
    with no_writes(h):
        response = h.client.get("/me", headers=headers)
    assert response.status_code == 401
    assert h.store.io == 0


def test_a_second_cookie_of_the_name_voids_the_session(h: Attacked) -> None:
    valid = h.victim.cookie
    for header in (
        f"{COOKIE}={valid}; {COOKIE}=",
        f"{COOKIE}=x; {COOKIE}={valid}",
        f"{COOKIE}={valid};{COOKIE}={valid}",
    ):
        with no_writes(h):
            response = h.attacker().get("/me", headers={"cookie": header})
        assert response.status_code == 401


def test_look_alike_cookie_names_are_not_the_session(h: Attacked) -> None:
    valid = h.victim.cookie
    for name in ("__host-session", "__Host-Session", "x__Host-session", "__Host-session ", "__Host-sessionx"):
        response = h.attacker().get("/me", headers={"cookie": f"{name}={valid}"})
        assert response.status_code == 401, name
    assert h.store.writes == 0


HOSTILE_CSRF: dict[str, dict[str, Any]] = {
    "non-ascii-token-header": {"headers": {"x-csrf-token": "t\u00e9\u00e9".encode("latin-1")}},
    "non-ascii-token-form": {"data": {"csrf_token": "\u4f1a\u8bdd"}},
    "non-ascii-token-multipart": {"files": {"csrf_token": (None, "\u2603".encode())}},
    "huge-token": {"headers": {"x-csrf-token": "A" * 20_000}},
    "unparsable-referer": {"headers": {"referer": "https://[evil.example/"}, "with_token": True},
    "unclosed-ipv6-referer": {"headers": {"referer": "http://[::1"}, "with_token": True},
    "non-ascii-origin": {"headers": {"origin": "https://testserver\u00e9".encode("latin-1")}, "with_token": True},
    "null-origin": {"headers": {"origin": "null"}, "with_token": True},
    "garbage-referer": {"headers": {"referer": "\x01\x02"}, "with_token": True},
    "multipart-without-boundary": {"headers": {"content-type": "multipart/form-data"}, "content": b"garbage"},
    "broken-multipart": {"headers": {"content-type": "multipart/form-data; boundary=xx"}, "content": b"--xx\r\nbroken"},
    "undecodable-form": {
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "content": b"csrf_token=%ff",
    },
    "too-many-fields": {
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "content": "&".join(f"f{i}=1" for i in range(5000)).encode(),
    },
}


@pytest.mark.parametrize("case", list(HOSTILE_CSRF))
def test_hostile_csrf_headers_are_refused(h: Attacked, case: str) -> None:
    token = h.victim.get("/csrf").json()["token"]
    spec = dict(HOSTILE_CSRF[case])
    headers: dict[str, str | bytes] = dict(spec.pop("headers", {}))
    if spec.pop("with_token", False):
        headers["x-csrf-token"] = token
    with no_writes(h):
        response = h.victim.post("/transfer", headers=headers, **spec)
    assert response.status_code in (400, 403), response.text  # 400: the form itself is malformed
    assert h.victim.post("/transfer", headers={"x-csrf-token": token}).status_code == 200


def test_a_huge_user_agent_is_stored_truncated(h: Attacked) -> None:
    browser = Browser(h.client, h.sessions.cookie_name, "A" * 10_000)
    assert browser.post("/login", params={"uid": "long-agent"}).status_code == 200
    (info,) = run(h.client, lambda: h.sessions.list_sessions("long-agent"))
    assert info.user_agent is not None and 0 < len(info.user_agent) <= 256


def test_control_characters_in_the_user_agent_are_stored_safely(h: Attacked) -> None:
    browser = Browser(h.client, h.sessions.cookie_name, "x")
    response = browser.post("/login", params={"uid": "nul-agent"}, headers={"user-agent": b"evil\x00agent\x7f\x1b[31m"})
    assert response.status_code == 200
    assert browser.get("/me").status_code == 200
    (info,) = run(h.client, lambda: h.sessions.list_sessions("nul-agent"))
    assert info.user_agent == "evil\x00agent\x7f\x1b[31m"


def test_injection_through_the_store_api_finds_nothing(h: Attacked) -> None:
    """Handles and user IDs reach stores as data, never as a query, pattern or command."""
    for value in ("*", "%", "' OR '1'='1", '{"$ne": null}', ".*", "session:*", "victim*", "VICTIM"):
        assert run(h.client, partial(h.sessions.list_sessions, value)) == []
        assert run(h.client, partial(h.sessions.revoke_session, "victim", value)) is False
        assert run(h.client, partial(h.sessions.revoke_all_sessions, value)) == 0
        assert run(h.client, partial(h.store.load, value)) is None
    assert h.store.writes == 0


def _random_cookie(rng: random.Random) -> str:
    shape = rng.randrange(4)
    alphabet = string.ascii_letters + string.digits + "-_"
    if shape == 0:  # shaped like a real cookie, signature wrong
        return "".join(rng.choices(alphabet, k=43)) + "." + "".join(rng.choices(alphabet, k=43))
    if shape == 1:
        return "".join(rng.choices(string.printable.replace(";", "").strip(), k=rng.randrange(200)))
    if shape == 2:
        return "".join(rng.choices(alphabet + ".", k=rng.randrange(80, 100)))
    return "".join(rng.choices(alphabet, k=43))  # a bare random ID


def test_a_flood_of_random_cookies_and_anonymous_logouts_writes_nothing(h: Attacked) -> None:
    rng = random.Random(20261128)
    attacker = h.attacker()
    statuses: set[int] = set()
    with no_writes(h):
        for index in range(500):
            cookie = _random_cookie(rng)
            kind = index % 4
            if kind == 0:
                response = attacker.request("POST", "/logout")  # no cookie at all
            else:
                path, method = (("/read", "GET"), ("/me", "GET"), ("/logout", "POST"))[kind - 1]
                response = attacker.request(method, path, headers={"cookie": f"{COOKIE}={cookie}"})
            statuses.add(response.status_code)
    assert statuses <= {200, 401}
    assert h.store.calls["load"] == 0  # nothing forged passes the signature check


class UnreachableStore(CountingStore):
    """A store whose server is down."""

    async def load(self, key: str) -> StoredSession | None:
        raise StoreUnavailableError("the session store is down")


@pytest.mark.anyio
async def test_a_request_path_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastapi_sessions")
    sessions = make_manager(UserSession, UnreachableStore(MemoryStore()))
    app = build_app(sessions)
    cookie = f"{sessions.cookie_name}={sessions.signer.sign(new_session_id())}"
    # A server decodes %0D%0A in the path into CR LF; test clients strip them, so call the app directly.
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/pages/x\r\nsession created: forged",
        "raw_path": b"/pages/x%0D%0Asession%20created:%20forged",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 443),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 503
    lines = [line for record in caplog.records for line in record.getMessage().splitlines()]
    assert any("store unavailable" in line for line in lines)
    assert not any(line.startswith("session created: forged") for line in lines)
