"""CSRF protection and flash messages over HTTP on every store."""

from collections.abc import Iterator

import pytest

from tests.support import Backend, Harness, UserSession, serve


@pytest.fixture
def h(backend: Backend) -> Iterator[Harness[UserSession]]:
    with serve(backend, UserSession) as value:
        yield value


def test_csrf_guard(backend: Backend) -> None:
    with serve(backend, UserSession, csrf_trusted_origins=["https://app.example.com"]) as h:
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


def test_csrf_without_a_session_is_refused(h: Harness[UserSession]) -> None:
    response = h.browser().post("/transfer", headers={"x-csrf-token": "anything"})
    assert response.status_code == 403
    assert h.store.writes == 0


def test_flash_is_shown_once(h: Harness[UserSession]) -> None:
    browser = h.browser()
    assert browser.post("/flash", params={"message": "saved", "category": "success"}).status_code == 200
    assert browser.get("/flashes").json() == [["success", "saved"]]
    assert browser.get("/flashes").json() == []
    browser.post("/flash", params={"message": "one", "category": "info"})
    browser.post("/flash", params={"message": "two", "category": "warning"})
    assert browser.get("/flashes").json() == [["info", "one"], ["warning", "two"]]
    assert browser.get("/flashes").json() == []
