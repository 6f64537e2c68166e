"""SESSION_TRANSPORT, SESSION_HEADER_NAME and SESSION_PARTITIONED: checked at startup, and the Partitioned attribute."""

from collections.abc import Iterator

import pytest

from fastapi_sessions import MemoryStore, SessionConfigError, SessionSettings
from tests.support import SECRET, Backend, Harness, SetCookie, UserSession, serve, set_cookies


def test_defaults() -> None:
    settings = SessionSettings(secret_key=SECRET)
    assert (settings.transport, settings.header_name, settings.partitioned) == ("cookie", "X-Auth-Token", False)


def test_transport_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_TRANSPORT", "Both")
    monkeypatch.setenv("SESSION_HEADER_NAME", "X-Session-Token")
    settings = SessionSettings(secret_key=SECRET)
    assert (settings.transport, settings.header_name) == ("both", "X-Session-Token")


@pytest.mark.parametrize("name", ["Cookie", "set-cookie", "X-CSRF-Token", "Authorization", "X Token", "X-Token:", ""])
def test_a_header_name_the_token_cannot_use_is_refused(name: str) -> None:
    with pytest.raises(SessionConfigError, match="SESSION_HEADER_NAME"):
        SessionSettings.load(secret_key=SECRET, header_name=name or " ")


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(SessionConfigError, match="SESSION_TRANSPORT"):
        SessionSettings.load(secret_key=SECRET, transport="query")


def test_partitioned_without_https_is_refused_at_startup() -> None:
    with pytest.raises(SessionConfigError) as refused:
        SessionSettings.load(secret_key=SECRET, partitioned=True, https_only=False, cookie_name="session")
    assert "SESSION_PARTITIONED" in str(refused.value) and "SESSION_HTTPS_ONLY" in str(refused.value)


@pytest.fixture
def h() -> Iterator[Harness[UserSession]]:
    with serve(Backend("memory", MemoryStore), UserSession, partitioned=True, same_site="none") as value:
        yield value


def test_partitioned_on_the_cookie_and_its_clearing(h: Harness[UserSession]) -> None:
    browser = h.browser()
    login = browser.post("/login", params={"uid": "alice"})
    [issued] = [SetCookie.parse(header) for header in set_cookies(login)]
    assert "partitioned" in issued.attributes and "secure" in issued.attributes
    assert "; Partitioned" in set_cookies(login)[0]  # CHIPS' spelling
    logout = browser.post("/logout")
    [cleared] = [SetCookie.parse(header) for header in set_cookies(logout)]
    assert cleared.max_age == 0 and "partitioned" in cleared.attributes


def test_no_partitioned_by_default() -> None:
    with serve(Backend("memory", MemoryStore), UserSession) as h:
        login = h.browser().post("/login", params={"uid": "alice"})
        assert "partitioned" not in set_cookies(login)[0].lower()
