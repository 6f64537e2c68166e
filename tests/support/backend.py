"""The stores under test: what each module of ``tests/backends/`` provides, and checks every store must pass."""

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

from fastapi_sessions import SessionStore, UpdateResult


@dataclass
class Backend:
    """A store under test.

    Attributes:
        name: The id the contract suite shows, e.g. ``redis`` or ``postgres``.
        make_store: Returns a new, unopened store in a namespace of its own (a fresh key prefix,
            table or collection). Called inside the test's event loop.
        url: A ``SESSION_STORE_URL`` reaching the same server, when the store has one.
    """

    name: str
    make_store: Callable[[], SessionStore]
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
