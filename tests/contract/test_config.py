"""The store contract, building stores: bad URLs, a missing driver, and passwords kept out of every message."""

import gc
import importlib
import logging
import re
import sys
import warnings
from urllib.parse import quote

import pytest

from fastapi_sessions import SessionConfigError, StoreUnavailableError, store_from_url
from tests.support import Backend

# Every character that ends a part of a URL, and a percent escape.
PASSWORD = "p/a?s#s@w:rd%2Fx"


def test_bad_urls_are_refused_with_a_clear_message(backend: Backend) -> None:
    if backend.from_url is None or not backend.bad_urls:
        pytest.skip(f"{backend.name} is not built from a URL")
    for url, problem in backend.bad_urls.items():
        with pytest.raises(SessionConfigError, match=re.escape(problem)) as refused:
            backend.from_url(url)
        assert str(refused.value).startswith("SESSION_STORE_URL '"), url


def test_a_missing_driver_names_the_extra(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = backend.driver
    if driver is None:
        pytest.skip(f"{backend.name} needs no driver")
    for name in list(sys.modules):
        if any(name == module or name.startswith(f"{module}.") for module in driver.modules):
            monkeypatch.setitem(sys.modules, name, None)
        elif name == driver.store_module or name.startswith(f"{driver.store_module}."):
            monkeypatch.delitem(sys.modules, name)
    install = f"pip install 'fastapi-sessions-typed[{driver.extra}]'"
    with pytest.raises(ImportError, match=re.escape(install)):
        importlib.import_module(driver.store_module)
    if backend.url is not None:
        with pytest.raises(ImportError, match=re.escape(install)):
            store_from_url(backend.url)


def with_password(url: str, password: str) -> str:
    """``url`` with the user ``sessions`` and ``password`` in place of its own user information."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://sessions:{password}@{rest.rpartition('@')[2]}"


def assert_hidden(text: str) -> None:
    for spelled in (PASSWORD, quote(PASSWORD, safe=""), "w:rd", "s#s"):
        assert spelled not in text


@pytest.mark.anyio
@pytest.mark.parametrize("escaped", [False, True], ids=["raw", "escaped"])
async def test_passwords_never_appear_in_errors_or_log_lines(
    backend: Backend, caplog: pytest.LogCaptureFixture, escaped: bool
) -> None:
    if backend.from_url is None or backend.unreachable_url is None:
        pytest.skip(f"{backend.name} has no server to give a password")
    caplog.set_level(logging.DEBUG, "fastapi_sessions")
    url = with_password(backend.unreachable_url, quote(PASSWORD, safe="") if escaped else PASSWORD)
    for bad in (url.replace("127.0.0.1:", "127.0.0.1:x", 1), url.replace("://", "+nonsense://", 1)):
        with pytest.raises(SessionConfigError) as refused:
            backend.from_url(bad)
        assert_hidden(str(refused.value))
    if not escaped:
        return  # a raw '#' or '?' leaves no URL a driver can use: refusing it without the password is the point
    store = backend.from_url(url)
    try:
        assert_hidden(store.location)
        async with store:  # the server is not there: logged, and the app would start
            with pytest.raises(StoreUnavailableError) as down:
                await store.load("k")
        assert_hidden(str(down.value))
        assert_hidden(caplog.text)
    finally:
        caplog.clear()  # the records hold the errors, whose tracebacks reach the driver's sockets
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
