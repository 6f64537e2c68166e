"""Redis servers the tests start themselves: a single server, a Sentinel setup, a Cluster; and a link that stalls.

Each runs from the ``redis-server`` binary on free loopback ports in a temporary directory, and is
stopped by its process ID.
"""

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support import free_port, unavailable
from tests.tls_certs import TlsFiles

HOST = "127.0.0.1"
SENTINEL_SERVICE = "mymaster"
CLUSTER_SLOTS = 16384


def redis_server_binary() -> str:
    """The path of ``redis-server``; skips the test (fails it in CI) when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed: the Redis Sentinel, Cluster and fault tests need it")
    return binary


def wait_until(check: Any, what: str, timeout: float = 15.0) -> None:
    """Call ``check()`` until it returns true; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """One ``redis-server`` process of the tests' own.

    Args:
        directory: Its working directory (logs, and the append-only file when ``persistent``).
        port: The port to listen on; a free one when omitted. Kept across `stop` and `start`.
        persistent: Keep the data in an append-only file, so a restart finds the sessions again.
        cluster_bus_port: Run as a Cluster node, with its cluster bus on this port.
        replica_of: Replicate the server on this port.
        password: Start with ``--requirepass``; the checking client authenticates with it.
        user: An ACL user to create at startup, as ``(name, password)``, allowed every command and key.
        tls: Listen for TLS only (on ``port``), with the server certificate of these files.
        tls_clients: With ``tls``, require a client certificate signed by the files' CA.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        persistent: bool = False,
        cluster_bus_port: int | None = None,
        replica_of: int | None = None,
        password: str | None = None,
        user: tuple[str, str] | None = None,
        tls: TlsFiles | None = None,
        tls_clients: bool = False,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persistent = persistent
        self.cluster_bus_port = cluster_bus_port
        self.replica_of = replica_of
        self.password = password
        self.user = user
        self.tls = tls
        self.tls_clients = tls_clients
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command_line(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        cluster = []
        if self.cluster_bus_port is not None:
            cluster = [
                *("--cluster-enabled", "yes", "--cluster-port", str(self.cluster_bus_port)),
                *("--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"),
            ]
        replication = [] if self.replica_of is None else ["--replicaof", HOST, str(self.replica_of)]
        credentials = [] if self.password is None else ["--requirepass", self.password]
        if self.user is not None:
            name, password = self.user
            credentials += ["--user", name, "on", f">{password}", "~*", "&*", "+@all"]
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.server_cert)]
            ports += ["--tls-key-file", str(self.tls.server_key), "--tls-ca-cert-file", str(self.tls.ca)]
            ports += ["--tls-auth-clients", "yes" if self.tls_clients else "no"]
        return [
            redis_server_binary(),
            *ports,
            *("--bind", HOST, "--dir", str(self.directory)),
            *("--save", "", "--daemonize", "no", "--logfile", f"redis-{self.port}.log"),
            *persistence,
            *cluster,
            *replication,
            *credentials,
        ]

    def start(self) -> "RedisServer":
        """Start the server and wait until it answers ``PING``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command_line(), cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.ping, f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited; see {self.directory}/redis-{self.port}.log")
        with self.client() as client:
            return bool(client.ping())

    def client(self, **kwargs: Any) -> "redis.Redis":
        """A synchronous client of this server, for setting up and checking; close it after use."""
        if self.password is not None:
            kwargs.setdefault("password", self.password)
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
            kwargs.update(ssl_certfile=str(self.tls.client_cert), ssl_keyfile=str(self.tls.client_key))
        return redis.Redis(host=HOST, port=self.port, socket_timeout=2, **kwargs)

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        """Shut the server down (SIGTERM), waiting for it to exit."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def redis_server(directory: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(directory, persistent=persistent).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SentinelSetup:
    """A master, its replicas, and the port of the Sentinel watching them as ``mymaster``."""

    master: RedisServer
    replicas: list[RedisServer]
    sentinel_port: int

    def current_master_port(self) -> int:
        with redis.Redis(host=HOST, port=self.sentinel_port, socket_timeout=2) as client:
            address = client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
        return int(address[1])


@contextmanager
def redis_sentinel(directory: Path, *, replicas: int = 0, down_after_ms: int = 10_000) -> Iterator[SentinelSetup]:
    """A master, ``replicas`` replicas, and one Sentinel that fails over after ``down_after_ms`` without the master."""
    master = RedisServer(directory / "master").start()
    servers = [master]
    process: subprocess.Popen[bytes] | None = None
    try:
        for index in range(replicas):
            servers.append(RedisServer(directory / f"replica{index}", replica_of=master.port).start())
        sentinel_port = free_port()
        config = directory / "sentinel" / "sentinel.conf"
        config.parent.mkdir(parents=True)
        config.write_text(
            f"port {sentinel_port}\n"
            f"bind {HOST}\n"
            f"dir {config.parent}\n"
            "logfile sentinel.log\n"
            f"sentinel monitor {SENTINEL_SERVICE} {HOST} {master.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} {max(down_after_ms * 3, 3000)}\n"
        )
        process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            cwd=config.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        setup = SentinelSetup(master, servers[1:], sentinel_port)

        def ready() -> bool:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-sentinel exited; see {config.parent}/sentinel.log")
            with redis.Redis(host=HOST, port=sentinel_port, socket_timeout=2) as client:
                if client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE) is None:
                    return False
                return len(client.sentinel_slaves(SENTINEL_SERVICE)) >= replicas

        wait_until(ready, f"the Sentinel on port {sentinel_port}")
        yield setup
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for server in servers:
            server.stop()


@contextmanager
def redis_cluster(directory: Path, masters: int = 3) -> Iterator[list[RedisServer]]:
    """A Cluster of ``masters`` masters and no replicas, the slots split evenly, every slot covered."""
    nodes: list[RedisServer] = []
    try:
        for index in range(masters):
            nodes.append(RedisServer(directory / f"node{index}", cluster_bus_port=free_port()).start())
        share = CLUSTER_SLOTS // masters
        for index, node in enumerate(nodes):
            first = index * share
            last = CLUSTER_SLOTS - 1 if index == masters - 1 else first + share - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with nodes[0].client() as client:
            for node in nodes[1:]:
                client.execute_command("CLUSTER", "MEET", HOST, node.port, node.cluster_bus_port)

        def cluster_ok() -> bool:
            for node in nodes:
                with node.client() as client:
                    info = client.cluster("INFO")
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != masters:
                    return False
            return True

        wait_until(cluster_ok, "the Redis Cluster to form")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


class StallingLink:
    """A TCP relay to a server whose open connections can go silent, as over a half-open link.

    `stall` makes every connection open now swallow what either side sends, while keeping it open: a
    client waiting on one hears nothing, ever, and its kernel reports no error. Connections opened
    afterwards are relayed again, as a client that reconnects would find. The relay runs on an event
    loop of its own in a thread; use it as a context manager, which closes everything on exit.

    Args:
        target_port: The port of the server on ``HOST`` to relay to.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        """How many connections clients have opened through the relay."""
        self._stalled: set[asyncio.StreamWriter] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="StallingLink", daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> "StallingLink":
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=5)

    def stall(self) -> None:
        """Silence every connection open now; later ones are relayed."""

        async def mark() -> None:
            self._stalled.update(self._writers)

        self._call(mark())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer, server_writer)
        self._writers.update(pair)
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, client_writer),
                self._pipe(server_reader, client_writer, client_writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in pair:
                self._writers.discard(writer)
                self._stalled.discard(writer)
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            if client in self._stalled:
                continue  # swallowed: neither side hears of it
            writer.write(data)
            await writer.drain()
        writer.transport.abort()  # one side hung up: so does the other, at once

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
