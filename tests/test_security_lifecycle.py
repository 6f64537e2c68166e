"""The session lifecycle over HTTP on every store: login, privilege changes, step-up, logout and timeouts.

Each test drives the app of `tests.security_app` as browsers would, asserting status, body and the
``Set-Cookie`` attributes. Time moves by a `FakeClock` given to the manager, so idle and absolute
timeouts are decided by the manager before any store's own expiry. Lifecycle events are logged with a
salted ID, never the session ID itself.
"""

import base64
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fastapi_sessions.signing import new_session_id
from tests.support import (
    SECRET,
    Backend,
    Browser,
    Harness,
    UserSession,
    assert_no_new_cookie,
    build_app,
    client,
    make_manager,
    parsed_cookies,
    serve,
)


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness[UserSession]]:
    with serve(backend, UserSession) as value:
        yield value


def test_login_issues_new_id_keeps_data_and_kills_the_old_record(h: Harness[UserSession]) -> None:
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
    h: Harness[UserSession], method: str, path: str, params: dict[str, str], expected: dict[str, Any]
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


def test_a_planted_session_is_never_adopted_at_login(h: Harness[UserSession]) -> None:
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


def test_session_ids_are_256_random_bits(h: Harness[UserSession]) -> None:
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


def test_the_store_never_sees_a_session_id(h: Harness[UserSession]) -> None:
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


def test_an_unprivileged_write_keeps_the_id(h: Harness[UserSession]) -> None:
    browser = h.browser()
    browser.post("/login", params={"uid": "alice"})
    before = browser.cookie
    response = browser.post("/write", params={"theme": "dark"})
    assert response.status_code == 200
    assert parsed_cookies(response) == []
    assert browser.cookie == before


def test_partial_login_then_complete_factor(h: Harness[UserSession]) -> None:
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


def test_step_up_after_the_clock_moves(h: Harness[UserSession]) -> None:
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


def test_role_guard(h: Harness[UserSession]) -> None:
    browser = h.browser()
    assert browser.get("/admin").status_code == 401
    browser.post("/login", params={"uid": "alice"})
    assert browser.get("/admin").status_code == 403
    browser.post("/roles/add", params={"role": "admin"})
    assert browser.get("/admin").status_code == 200


@pytest.mark.parametrize("path", ["/logout", "/destroy"])
def test_logout_deletes_the_record_and_expires_the_cookie(h: Harness[UserSession], path: str) -> None:
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
    sessions = make_manager(UserSession, backend.make_store(), cookie_name="app_sid", path="/app", domain="example.com")
    # Served under the cookie's path, as it must be for the browser to send the cookie back.
    with client(build_app(sessions), root_path="/app") as test_client:
        browser = Browser(test_client, sessions.cookie_name)
        (issued,) = parsed_cookies(browser.post("/login", params={"uid": "alice"}))
        assert issued.scope == ("app_sid", "/app", "example.com")
        cookie = browser.cookie
        assert cookie is not None
        assert browser.get("/me").status_code == 200, "inside the cookie's path, the session is there"
        (cleared,) = parsed_cookies(browser.post("/logout"))
        assert cleared.scope == issued.scope
        assert cleared.max_age == 0
        assert {name for name in cleared.attributes} >= {"secure", "httponly", "samesite"}
        assert browser.replay("GET", "/me", cookie).status_code == 401


@pytest.mark.parametrize("path", ["/logout", "/destroy"])
@pytest.mark.parametrize("login", [True, False], ids=["logged-in", "anonymous"])
def test_a_flash_after_logout_is_kept_in_a_new_session(h: Harness[UserSession], path: str, login: bool) -> None:
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


def test_logout_then_login_in_one_request_switches_user(h: Harness[UserSession]) -> None:
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
    with serve(backend, UserSession, idle_timeout=600, touch_after=60) as h:
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
    with serve(backend, UserSession, idle_timeout=600, touch_after=60, rolling=False) as h:
        browser = h.browser()
        browser.post("/login", params={"uid": "alice"})
        h.clock.advance(300)
        browser.post("/write", params={"theme": "dark"})
        h.clock.advance(500)
        assert browser.get("/me").status_code == 200  # 500 s after the write
        h.clock.advance(200)
        assert browser.get("/me").status_code == 401  # 700 s after the write; the read did not count


def test_absolute_timeout_is_never_extended(backend: Backend) -> None:
    with serve(backend, UserSession, max_age=3600, idle_timeout=600, touch_after=60) as h:
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


# Logging.


def test_logs_hold_no_secret_and_no_session_id(h: Harness[UserSession], caplog: pytest.LogCaptureFixture) -> None:
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
    for secret in (SECRET, *ids, *cookies, *(h.sessions.signer.store_key(session_id) for session_id in ids)):
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
    with serve(backend, UserSession, idle_timeout=600, touch_after=60) as h:
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
