"""RespClient, the pipelining client behind RedisStore on one server: against a redis-server of the test's own.

The faults as a user meets them, through the store and over HTTP, are in tests/test_redis_faults.py.
"""

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastapi_sessions.stores.redis import RespClient
from tests.redis_servers import HOST, RedisServer
from tests.support import free_port

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


async def test_commands_queued_behind_an_overdue_one_fail_with_it(server: RedisServer) -> None:
    client = RespClient(HOST, server.port, command_timeout=0.3)
    assert await client.ping()
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        results = await asyncio.gather(
            *(client.execute_command("ECHO", str(n)) for n in range(5)), return_exceptions=True
        )
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert all(isinstance(result, RedisTimeoutError | RedisConnectionError) for result in results), results
    assert isinstance(results[0], RedisTimeoutError)
    assert await client.execute_command("ECHO", "after") == b"after"  # a new connection
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


async def test_a_protocol_error_is_a_lost_connection() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"-ERR Protocol error: invalid bulk length\r\n")  # then Redis closes the connection
        await writer.drain()
        writer.close()

    fake = await asyncio.start_server(refuse, HOST, 0)
    try:
        client = RespClient(HOST, fake.sockets[0].getsockname()[1])
        with pytest.raises(RedisConnectionError, match="Protocol error: invalid bulk length"):
            await client.ping()
        await client.aclose()
    finally:
        fake.close()
        await fake.wait_closed()


async def test_a_database_the_server_lacks_is_refused_at_connect(server: RedisServer) -> None:
    client = RespClient(HOST, server.port, db=99)
    with pytest.raises(ResponseError, match="DB index is out of range"):
        await client.ping()
    await client.aclose()


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
