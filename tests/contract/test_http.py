"""The store contract through HTTP: what a login leaves in the store, and a store that is down."""

import gc
import time
import warnings

import pytest

from fastapi_sessions import AuthSession, store_from_url
from fastapi_sessions.signing import new_session_id
from tests.support import Backend, client, login_app, make_manager, set_cookies


def test_the_session_id_is_stored_nowhere_only_its_hash(backend: Backend) -> None:
    if backend.dump is None:
        pytest.skip(f"{backend.name} cannot show what it holds")
    store = backend.make_store()
    sessions = make_manager(AuthSession, store)
    with client(login_app(sessions)) as browser:
        assert browser.post("/login/alice").status_code == 200
        cookie = browser.cookies[sessions.cookie_name]
        unsigned = sessions.signer.unsign(cookie)
        assert unsigned is not None
        # Read in the app's own event loop, with the store still open.
        held = browser.portal.call(backend.dump, store) if browser.portal is not None else ""
    assert unsigned.key in held
    assert "alice" in held
    assert unsigned.session_id not in held and cookie not in held


def test_an_unreachable_store_is_a_503_and_no_cookie(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    if backend.unreachable_url is None:
        pytest.skip(f"{backend.name} has no server to lose")
    sessions = make_manager(AuthSession, store_from_url(backend.unreachable_url), store_timeout=1, retry_after=7)
    try:
        with client(login_app(sessions)) as browser:  # the app starts though the store is not there
            cookie = f"{sessions.cookie_name}={sessions.signer.sign(new_session_id())}"
            started = time.monotonic()
            response = browser.get("/me", headers={"cookie": cookie})
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
            assert response.json() == {"detail": "Session store unavailable"}
            assert set_cookies(response) == []
            response = browser.post("/login/alice")
            assert response.status_code == 503 and set_cookies(response) == []
            assert time.monotonic() - started < 3
            assert browser.get("/health").json() == {"ok": True}  # a route that needs no session
    finally:
        caplog.clear()  # the records hold the errors, whose tracebacks reach the driver's sockets
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
