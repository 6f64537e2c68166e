"""RespClient, the pipelining client behind RedisStore on one server: against a redis-server of the test's own."""

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastapi_sessions import AuthSession, SessionManager
from fastapi_sessions.signing import new_session_id
from fastapi_sessions.stores.redis import RedisStore, RespClient
from tests.redis_servers import HOST, RedisServer, StallingLink, redis_server
from tests.support import client, free_port, login_app, make_manager, set_cookies

pytestmark = pytest.mark.anyio

DEADLINE = 0.2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path).start()
    yield started
    started.stop()


async def test_commands_and_replies(server: RedisServer) -> None:
    client = RespClient(HOST, server.port, db=2)
    assert await client.ping()
    assert await client.execute_command("HSET", "h", "a", "1", "b", "é") == 2
    assert await client.hgetall("h") == {b"a": b"1", b"b": "é".encode()}
    assert await client.hgetall("missing") == {}
    assert await client.smembers("nothing") == set()
    assert await client.delete("h", "missing") == 1
    sha = await client.script_load("return KEYS[1] .. ARGV[1]")
    assert await client.evalsha(sha, 1, "k", "v") == b"kv"
    with pytest.raises(NoScriptError):
        await client.evalsha("0" * 40, 0)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.execute_command("SET", "s", "x") and await client.hgetall("s")
    with server.client(db=2) as sync:
        assert sync.get("s") == b"x"  # SELECT 2 took effect
    await client.aclose()


async def test_many_concurrent_commands_share_one_connection(server: RedisServer) -> None:
    client = RespClient(HOST, server.port)
    replies = await asyncio.gather(*(client.execute_command("INCR", "n") for _ in range(2000)))
    assert sorted(replies) == list(range(1, 2001))
    with server.client() as sync:
        clients = sync.client_list()
    assert len(clients) == 2  # ours, and the checking client
    pipe = client.pipeline()
    pipe.hgetall("x").hgetall("y")
    assert await pipe.execute() == [{}, {}]
    await client.aclose()


async def test_reconnects_after_the_server_restarts(server: RedisServer) -> None:
    client = RespClient(HOST, server.port)
    assert await client.ping()
    server.kill()
    with pytest.raises(RedisConnectionError):
        await client.ping()
    server.start()
    assert await client.ping()
    await client.aclose()


async def test_a_closed_port_is_a_connection_error() -> None:
    client = RespClient(HOST, free_port(), connect_timeout=0.5)
    with pytest.raises(RedisConnectionError, match="cannot connect"):
        await client.ping()


async def test_a_frozen_server_times_out_and_the_connection_starts_afresh(server: RedisServer) -> None:
    client = RespClient(HOST, server.port, command_timeout=0.3)
    assert await client.ping()
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        with pytest.raises(RedisTimeoutError, match="did not answer"):
            await client.ping()
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert await client.ping()  # a new connection: no reply of the old one is mistaken for this one's
    await client.aclose()


async def test_authentication(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        with server.client() as sync:
            sync.config_set("requirepass", "s3cret")
        assert await RespClient(HOST, server.port, password="s3cret").ping()
        with pytest.raises(AuthenticationError):
            await RespClient(HOST, server.port, password="wrong").ping()
        with pytest.raises(AuthenticationError):
            await RespClient(HOST, server.port).ping()
    finally:
        with server.client(password="s3cret") as sync:
            sync.config_set("requirepass", "")
        server.stop()


async def test_a_reply_after_its_caller_gave_up_reaches_no_later_caller(server: RedisServer) -> None:
    client = RespClient(HOST, server.port)
    assert await client.ping()
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(DEADLINE):  # the caller's deadline, as SESSION_STORE_TIMEOUT is
                await client.execute_command("ECHO", "first")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    # The server now answers "first" on the old connection, which was dropped: this is a new one.
    assert await client.execute_command("ECHO", "second") == b"second"
    assert await client.execute_command("ECHO", "third") == b"third"
    await client.aclose()


# Faults through HTTP: SESSION_STORE_TIMEOUT cancels the store call, as in production.


def http_manager(url: str) -> SessionManager[AuthSession]:
    """A manager on the built-in client whose store calls are cancelled after ``DEADLINE``."""
    return make_manager(AuthSession, RedisStore.from_url(url), store_timeout=DEADLINE)


def test_a_stalled_connection_costs_one_503_and_the_next_request_reconnects(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server, StallingLink(server.port) as link:
        with client(login_app(http_manager(f"redis://{HOST}:{link.port}/0"))) as browser:
            assert browser.post("/login/alice").status_code == 200
            assert browser.get("/me").json() == {"user": "alice"}
            assert link.connections == 1

            link.stall()  # the server is fine; this connection will never carry a reply again
            started = time.monotonic()
            response = browser.get("/me")
            assert response.status_code == 503 and set_cookies(response) == []
            assert time.monotonic() - started < 10 * DEADLINE

            response = browser.get("/me")  # the stalled connection was dropped: a new one
            assert response.status_code == 200 and response.json() == {"user": "alice"}
            assert link.connections == 2
            assert browser.get("/me").json() == {"user": "alice"}


def test_a_frozen_server_costs_a_503_while_frozen_only(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        with client(login_app(http_manager(f"{server.url}/0"))) as browser:
            assert browser.post("/login/alice").status_code == 200
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                assert browser.get("/me").status_code == 503
                assert browser.get("/me").status_code == 503
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert browser.get("/me").json() == {"user": "alice"}


def test_a_password_and_an_acl_user(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret", user=("sessions", "acl-pw")).start()
    try:
        for url in (f"redis://:s3cret@{HOST}:{server.port}/0", f"redis://sessions:acl-pw@{HOST}:{server.port}/3"):
            with client(login_app(http_manager(url))) as browser:
                assert browser.post("/login/alice").status_code == 200
                assert browser.get("/me").json() == {"user": "alice"}
        with server.client() as admin:
            assert admin.execute_command("ACL", "LOG") == []
    finally:
        server.stop()


@pytest.mark.parametrize("user", ["", "sessions"])
def test_a_wrong_password_is_a_clear_503_that_never_shows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, user: str
) -> None:
    caplog.set_level(logging.DEBUG, "fastapi_sessions")
    server = RedisServer(tmp_path, password="s3cret", user=("sessions", "acl-pw")).start()
    try:
        sessions = http_manager(f"redis://{user}:not-the-pw@{HOST}:{server.port}/0")
        with client(login_app(sessions)) as browser:  # the app starts, and says why Redis refuses it
            assert f"authentication as {user or 'default'!r} refused" in caplog.text
            assert "WRONGPASS" in caplog.text
            cookie = f"{sessions.cookie_name}={sessions.signer.sign(new_session_id())}"
            response = browser.get("/me", headers={"cookie": cookie})
            assert response.status_code == 503
            assert browser.post("/login/alice").status_code == 503
        assert "not-the-pw" not in caplog.text and "not-the-pw" not in response.text
    finally:
        server.stop()
