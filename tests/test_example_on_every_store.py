"""The demo app, unchanged, on every store that has a SESSION_STORE_URL: only the variable differs."""

from pathlib import Path

import pytest

from tests.support import Backend, client, set_cookies
from tests.test_examples import ALICE, BOB, load_demo, login


def test_the_demo_runs_on_the_store_the_url_names(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if backend.url is None:
        pytest.skip(f"{backend.name} is built from a client, not a URL")
    demo = load_demo(monkeypatch, tmp_path, SESSION_STORE_URL=backend.url)
    assert type(demo.sessions.store).__name__ != "MemoryStore" or backend.name == "memory"
    # One client (one event loop, as in a server) that switches between two users' cookie jars.
    with client(demo.app) as browser:
        assert browser.get("/me").status_code == 401
        login(browser, BOB)
        bob = dict(browser.cookies)
        browser.cookies.clear()
        assert browser.get("/admin").status_code == 401
        login(browser, ALICE)
        assert browser.get("/me").json() == {"user": "1", "roles": ["admin"], "theme": "light"}
        assert browser.get("/admin").status_code == 200
        assert browser.post("/cart/7").json() == {"cart": [7]}
        assert browser.post("/cart/8").json() == {"cart": [7, 8]}
        assert browser.get("/cart").json() == {"cart": [7, 8]}
        assert set_cookies(browser.get("/cart")) == []
        assert "Max-Age=0" in set_cookies(browser.post("/logout"))[0]
        assert browser.get("/me").status_code == 401
        browser.cookies.clear()
        browser.cookies.update(bob)
        assert browser.get("/me").json()["user"] == "2"
        assert browser.get("/admin").status_code == 403
