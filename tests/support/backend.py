"""The stores under test: what each module of ``tests/backends/`` provides, and checks every store must pass."""

import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

from fastapi_sessions import SessionStore, UpdateResult


@dataclass(frozen=True)
class Driver:
    """The driver a store module imports, to hide in the missing-driver test.

    Attributes:
        modules: The driver's top-level modules, e.g. ``("redis",)``.
        extra: The extra that installs it, named in the ImportError.
        store_module: The module users import the store from.
    """

    modules: tuple[str, ...]
    extra: str
    store_module: str


@dataclass
class Backend:
    """A store under test, and how the contract suite reaches into it.

    Attributes:
        name: The id the contract suite shows, e.g. ``redis`` or ``postgres``.
        make_store: Returns a new, unopened store in a namespace of its own (a fresh key prefix,
            table or collection). Called inside the test's event loop.
        url: A ``SESSION_STORE_URL`` reaching the same server, when the store has one.
        age: Makes the record under a key ``seconds`` older (its expiry that much earlier) in an
            opened store, as time passing would, without sleeping.
        dump: Everything the store holds in its namespace (keys and values), as text.
        server_expires: The server removes a record at its expiry (Redis): an expired record is
            gone, rather than still present and filtered out.
        from_url: The store class's ``from_url``, for a store built from URLs.
        unreachable_url: A URL of this store whose server is unreachable (a closed port).
        bad_urls: URLs ``from_url`` must refuse, each with a part of the message that says why.
        driver: The driver the store imports, when it has one to install.
    """

    name: str
    make_store: Callable[[], SessionStore]
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    age: "Callable[[SessionStore, str, float], Awaitable[None]] | None" = None
    dump: "Callable[[SessionStore], Awaitable[str]] | None" = None
    server_expires: bool = False
    from_url: Callable[[str], SessionStore] | None = None
    unreachable_url: str | None = None
    bad_urls: dict[str, str] = field(default_factory=dict)
    driver: Driver | None = None


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose server is missing; in CI (``CI`` set) fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI a skipped store test is a failure)", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def assert_not_live(store: SessionStore, key: str, *, user_id: str, version: int) -> None:
    """Every method of ``store`` treats ``key`` as absent: a record past its expiry that the server still holds.

    Args:
        store: An opened store.
        key: The expired record's key.
        user_id: Its user, who then has no live session.
        version: Its version, which must not make an update land.
    """
    assert await store.load(key) is None
    assert await store.load_many([key]) == [None]
    assert await store.user_keys(user_id) == []
    assert await store.update(key, {"a": 2}, ttl=60.0) is UpdateResult.MISSING
    assert await store.update(key, {"a": 2}, ttl=60.0, expected_version=version) is UpdateResult.MISSING
    assert not await store.replace(key, "new", {"a": 1}, ttl=60.0, user_id=user_id, old_user_id=user_id)
    assert await store.load("new") is None
