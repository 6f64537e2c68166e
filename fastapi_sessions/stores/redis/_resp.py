"""`RespClient`: a small pipelining Redis client, the fast path of `RedisStore` on one server.

redis-py's asyncio client checks a connection out of a pool for every command and parses replies in
Python around hiredis: about 50 µs of CPU per command on a typical server, and one connection per
concurrent request. Sessions need a handful of commands (HGETALL, EVALSHA, DEL, SREM, SMEMBERS,
SCRIPT LOAD), all of which this client sends over one connection, pipelined: every command issued in
one turn of the event loop goes out in one write, and hiredis parses the replies in C, in order. Under
load that is a few µs per command, and one connection per process, as node-redis does.

It speaks to a single Redis server (or the master a URL names); Sentinel and Cluster use redis-py.
Errors are redis-py's exception classes, so the store handles both clients alike.
"""

import asyncio
import collections
import math
import ssl
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["RespClient"]

_ERRORS: dict[str, type[Exception]] = {
    "NOSCRIPT": NoScriptError,
    "OOM": OutOfMemoryError,
    "READONLY": ReadOnlyError,
    "LOADING": BusyLoadingError,
}

# A timer may fire this much before its time (the loop's clock resolution): that counts as on time.
_TIMER_SLACK = 0.001

# Typed here: the stub declares a one-element tuple.
_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


def _error(reply: hiredis.ReplyError) -> Exception:
    message = str(reply)
    code = message.split(" ", 1)[0]
    if code in ("NOAUTH", "WRONGPASS", "NOPERM"):
        return AuthenticationError(message)
    if message.startswith("ERR Protocol error"):  # Redis closes the connection after saying this
        return RedisConnectionError(message)
    return _ERRORS.get(code, ResponseError)(message)


class _Connection(asyncio.Protocol):
    """One connection: requests are queued, written once per loop turn, and answered in order.

    The reply timeout is kept by one timer per connection rather than one per command: replies come
    in order, so only the oldest request outstanding can be the first overdue. The timer fires at
    that request's deadline and, if its reply came meanwhile, moves on to the next one's. Under load
    that is one timer every ``timeout`` seconds instead of a timer made and cancelled per command.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str, timeout: float | None) -> None:
        self._loop = loop
        self._where = where
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._deadlines: collections.deque[float] = collections.deque()  # of the waiters, when a timeout is set
        self._watchdog: asyncio.TimerHandle | None = None
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisConnectionError(f"protocol error from Redis at {self._where}: {exc}"))
                if self._transport is not None:
                    self._transport.abort()
                return
            if reply is False:
                return
            waiter = self._waiters.popleft()
            if self._timeout is not None:
                self._deadlines.popleft()
            if waiter.done():  # its caller gave up (timed out); the reply still keeps the order
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_error(reply))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis at {self._where} lost" + (f": {exc}" if exc else "")))

    def _fail(self, error: Exception, *, overdue: Exception | None = None, cutoff: float = -math.inf) -> None:
        """Fail every request outstanding with ``error``, or with ``overdue`` those due by ``cutoff``."""
        if self.lost is None:
            self.lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiters:
            waiter = self._waiters.popleft()
            deadline = self._deadlines.popleft() if self._timeout is not None else math.inf
            if not waiter.done():
                waiter.set_exception(overdue if overdue is not None and deadline <= cutoff else error)

    def _check_deadline(self) -> None:
        self._watchdog = None
        if self.lost is not None or not self._deadlines:
            return  # the next request arms the timer again
        deadline = self._deadlines[0]
        cutoff = self._loop.time() + _TIMER_SLACK
        if deadline > cutoff:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)
            return
        # A reply that late means a stuck connection: start afresh, as after a lost one.
        self._fail(
            RedisConnectionError(f"connection to Redis at {self._where} dropped after a timeout"),
            overdue=RedisTimeoutError(f"Redis at {self._where} did not answer in {self._timeout} s"),
            cutoff=cutoff,
        )
        if self._transport is not None:
            self._transport.abort()

    def request(self, command: bytes) -> "asyncio.Future[Any]":
        if self.lost is not None:
            raise self.lost
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        if self._timeout is not None:
            self._deadlines.append(self._loop.time() + self._timeout)
            if self._watchdog is None:
                self._watchdog = self._loop.call_at(self._deadlines[0], self._check_deadline)
        self._outgoing.append(command)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return waiter

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self.lost is None:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def abort(self) -> None:
        """Drop the connection now: the next command opens a new one instead of queueing behind this."""
        self._fail(RedisConnectionError(f"connection to Redis at {self._where} dropped after a timeout"))
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class RespClient:
    """A pipelining client for one Redis server, over one connection that reconnects when lost.

    Args:
        host: Server host name or address.
        port: Server port.
        db: Database number, selected on connect.
        username: ACL user name, if any.
        password: Password, if any.
        ssl_context: For TLS (``rediss://``); ``None`` for plain TCP.
        connect_timeout: Seconds to connect and authenticate.
        command_timeout: Seconds to wait for a reply before the connection counts as broken.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 2.0,
        command_timeout: float | None = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.db = db
        self._username = username
        self._password = password
        self._ssl = ssl_context
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"RespClient(host={self.host!r}, port={self.port}, db={self.db})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self.where, self.command_timeout), self.host, self.port, ssl=self._ssl
                )
                # Without a password, a PING: a server that wants one says so now (NOAUTH), before any
                # command of the store is queued on a connection it will refuse.
                setup: list[Sequence[str | int]] = [("PING",)]
                if self._password is not None:
                    auth = ("AUTH", self._username, self._password) if self._username else ("AUTH", self._password)
                    setup = [auth]
                if self.db:
                    setup.append(("SELECT", self.db))
                try:
                    for reply in [connection.request(_pack(tuple(command))) for command in setup]:
                        await reply
                except AuthenticationError as exc:
                    connection.abort()
                    # The server's reason (WRONGPASS...), and who: never the password.
                    user = self._username or "default"
                    if self._password is None:
                        raise AuthenticationError(f"Redis wants a password, and the URL gives none: {exc}") from None
                    raise AuthenticationError(f"authentication as {user!r} refused: {exc}") from None
                except ResponseError as exc:
                    connection.abort()
                    if "password" not in str(exc) or self._password is None:
                        raise
                    # Redis 6 and 7: "ERR AUTH <password> called without any password configured ...".
                    raise AuthenticationError(
                        "the URL gives a password, but Redis has none set for the default user: remove it from "
                        f"the URL, or set one on the server (requirepass): {exc}"
                    ) from None
                except BaseException:
                    connection.abort()
                    raise
        except TimeoutError:
            raise RedisTimeoutError(f"connecting to Redis at {self.where} timed out") from None
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {self.where}: {exc}") from exc
        return connection

    async def _live_connection(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.lost is None:
            return connection
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            connection = self._connection
            if connection is None or connection.lost is not None:
                connection = self._connection = await self._connect()
            return connection

    async def execute_command(self, *args: Any) -> Any:
        """Send one command and return its reply (bytes, int, list, or ``None``).

        Raises:
            RedisTimeoutError: no reply within ``command_timeout``; the connection is dropped.
        """
        connection = self._connection
        if connection is None or connection.lost is not None:
            connection = await self._live_connection()
        reply = connection.request(_pack(args))
        try:
            return await reply
        except asyncio.CancelledError:
            # The caller gave up (its own deadline, SESSION_STORE_TIMEOUT). Awaiting the reply in a
            # cancelled task cancels the reply too, so it is done now without having arrived: the
            # connection may be stalled (a frozen server, a half-open link), and every later command
            # would queue behind it. Drop it, so the next command reconnects. A reply that did arrive
            # just before the cancellation needs nothing dropped.
            if reply.cancelled() or not reply.done():
                connection.abort()
            raise

    # The commands RedisStore sends, named as in redis-py.

    async def hgetall(self, name: str) -> dict[bytes, bytes]:
        flat = await self.execute_command("HGETALL", name)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    # A plain function returning `execute_command`'s coroutine: one coroutine less per command.
    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Coroutine[Any, Any, Any]:
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Coroutine[Any, Any, Any]:
        return self.execute_command("EVAL", script, numkeys, *keys_and_args)

    async def script_load(self, script: str) -> str:
        sha: bytes = await self.execute_command("SCRIPT", "LOAD", script)
        return sha.decode()

    def delete(self, *names: str) -> Coroutine[Any, Any, int]:
        return self.execute_command("DEL", *names)

    def srem(self, name: str, *values: str) -> Coroutine[Any, Any, int]:
        return self.execute_command("SREM", name, *values)

    async def smembers(self, name: str) -> set[bytes]:
        return set(await self.execute_command("SMEMBERS", name))

    async def ping(self) -> bool:
        return bool(await self.execute_command("PING") == b"PONG")

    def pipeline(self, transaction: bool = False) -> "RespPipeline":
        """Commands queued and sent together (not a MULTI transaction)."""
        if transaction:
            raise ValueError("RespClient pipelines are not transactions")
        return RespPipeline(self)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class RespPipeline:
    """Commands that go out in one write; `execute` returns their replies in order."""

    def __init__(self, client: RespClient) -> None:
        self._client = client
        self._commands: list[tuple[Any, ...]] = []

    def hgetall(self, name: str) -> "RespPipeline":
        self._commands.append(("HGETALL", name))
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands and return their replies; an error raises, or with ``raise_on_error`` off
        takes the place of its reply, as in redis-py."""
        commands, self._commands = self._commands, []
        replies = await asyncio.gather(
            *(self._client.execute_command(*command) for command in commands), return_exceptions=not raise_on_error
        )
        return [
            dict(zip(reply[::2], reply[1::2], strict=True))
            if command[0] == "HGETALL" and not isinstance(reply, BaseException)
            else reply
            for command, reply in zip(commands, replies, strict=True)
        ]
