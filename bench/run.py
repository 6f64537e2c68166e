"""Benchmark fastapi_sessions against its peers, side by side, in one run on this machine.

Usually started through ``bench/run`` (which installs wrk, the peer venvs and the Node packages
first). See docs/performance.md for what is measured and how.

    bench/run                     # everything, ~11 minutes (15 on a busy machine)
    bench/run --quick             # one server pass, short runs, ~2 minutes
    bench/run --peers fastapi,ours-memory,starsessions-redis
    bench/run --live-sessions 1,10000,100000,1000000
    bench/run --only clients      # the Redis clients side by side (RespClient, redis-py, coredis), ~1 minute
    bench/run --only workers      # the shared-store peers at 1 and 2 uvicorn workers (Node: cluster), ~3 minutes

Sections (--skip and --only take these): http (every peer over HTTP, one pinned worker), workers (the peers
that can share sessions between processes, at 1 and at 2 workers), inproc, race (lost updates), sizes,
live (live sessions in the store), clients (the Redis clients). --quick leaves workers out unless --only
names it.

Columns beyond req/s and x bare: CPU µs/req (the server's utime+stime per request, every process of it),
x bare by CPU, p99 x bare, store ops/req (Redis commands, a script's own commands included; PostgreSQL
transactions), store round trips/req (Redis: the server's socket reads per request over sequential
requests, with the commands clients sent; PostgreSQL: transactions). The workers table: req/s at 1 and
2 workers, scaling (2-worker req/s over 1-worker), x bare at each, CPU µs/req, p99, and the busiest
worker's share of the workers' CPU. The summary adds read p99 x floor (the no-op Depends peer) and the
round trips; the targets table checks the project's targets against the same run, with each figure by CPU.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
APPS = os.path.join(BENCH, "apps")
NODE_DIR = os.path.join(BENCH, "node")
RESULTS = os.path.join(BENCH, "results")
MAIN_PY = os.path.join(REPO, ".venv", "bin", "python")
PEERS_PY = os.path.join(BENCH, ".venv-peers", "bin", "python")
LEGACY_PY = os.path.join(BENCH, ".venv-legacy", "bin", "python")
SERVER_CORE = "1"
CLIENT_CORE = "0"
# The workers section leaves every process free to run on both cores (see WORKERS_NOTES).
ALL_CORES = "0,1"
CONNECTIONS = 32
ROUTES = {"bare": ("GET", "/bare"), "read": ("GET", "/read"), "write": ("POST", "/write")}
PASSES = [("uvloop", "httptools"), ("asyncio", "h11")]
# Redis databases of the benchmark's own redis-server, one per peer family.
REDIS_DB = {"ours": 1, "starsessions": 2, "express": 3, "clients": 5, "compiled": 6}
# fastapi_sessions with its per-request modules compiled by mypyc (docs/compiled.md), as bench/run builds it.
COMPILED = os.path.join(BENCH, ".compiled")
SECTIONS = ("http", "workers", "inproc", "race", "sizes", "live", "clients")
# The peers whose sessions several processes can share: a network store, or the cookie itself.
WORKER_PEERS = (
    "fastapi",
    "fastapi-depends",
    "ours-redis",
    "ours-postgres",
    "starlette-cookie",
    "starsessions-redis",
    "express-redis",
)
WORKER_COUNTS = (1, 2)
# Sequential requests behind each Redis round-trip count.
ROUND_TRIP_REQUESTS = 40
POSTGRES_DB = "fastapi_sessions_bench"
# PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s), and a margin: the longest an idle backend keeps its counts.
STATS_IDLE_FLUSH = 10.5

HTTP_NOTES = """\
Each cell is the best of {rounds} interleaved round(s) (highest req/s, with that run's other columns).
req/s: wrk's Requests/sec; x bare: over bare FastAPI's req/s on the same route.
CPU µs/req: the server process's utime+stime (from /proc/PID/stat) during the run, divided by the requests
wrk completed; +CPU subtracts bare FastAPI's; x bare by CPU is bare FastAPI's CPU µs/req over the peer's:
the throughput ratio one core would give if nothing else ran on it (steadier than req/s on a busy machine).
store ops/req: Redis `INFO commandstats` calls during the run per request (the commands a Lua script runs
count too, besides its EVALSHA), or PostgreSQL transactions (`pg_stat_database`).
store round trips/req: how many times a request waits on the store. Redis: after the first round's run,
{trip_requests} sequential requests on one connection, and the redis-server's `total_reads_processed` delta per
request (one read per round trip: pipelined commands arrive in one read, so they count once); in brackets
the commands clients sent (MONITOR lines not marked `lua`: a script's EVALSHA counts, the commands it runs do
not). Sequential, because under load a pipelining client sends several requests' commands in one write.
PostgreSQL, in the first pass only: transactions per request over the same number of sequential requests
per route after all rounds (`pg_stat_database`, less the transactions of the psql that reads it, each count
10 s after the requests, once every backend has reported; pg_stat_statements would count statements, but
loading it needs a server restart). They equal round trips only while each statement is its own
transaction: an explicit BEGIN ... COMMIT costs more round trips than it counts. PostgreSQL's store ops/req
come from the timed run, whose edges blur: backends report their counts at most once a second.
The Node rows run in the first pass only (node has no loop/http choice); their ratios compare two stacks."""

INPROC_NOTES = """
Each request is one call of the ASGI app with a prepared scope (Python 3.11, uvloop, pinned to one core).
CPU µs is this thread's CPU time per request (time.thread_time), wall µs the elapsed time; each the best
of five timed rounds. +CPU µs is over bare FastAPI's same route: the library's own cost plus its store
client's. The wall time adds the store's round trip (Redis, PostgreSQL) and any wait for the core."""

WRK_LUA = """
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local cookie = os.getenv("BENCH_COOKIE")
if cookie ~= nil and #cookie > 0 then
  wrk.headers["Cookie"] = cookie
end
if wrk.method == "POST" then
  wrk.body = ""
end
"""


@dataclasses.dataclass
class Peer:
    """One contender: how to start it and where its sessions live."""

    key: str
    label: str
    kind: str  # "py" or "node"
    python: str = ""
    module: str = ""
    store: str = "none"  # none, memory, cookie, redis, postgres
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    on_repo_path: bool = False  # needs this repository importable (fastapi_sessions itself)
    package_path: str = REPO  # where its fastapi_sessions is imported from, with on_repo_path
    missing: str | None = None  # why it cannot run here, if it cannot

    @property
    def family(self) -> str:
        return self.key.split("-")[0]

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
        env.pop("PYTHONPATH", None)
        env.update(self.env)
        if self.kind == "py":
            env["PYTHONPATH"] = os.pathsep.join([APPS, self.package_path] if self.on_repo_path else [APPS])
        env.update(extra or {})
        return env


def all_peers() -> list[Peer]:
    ours = {"python": MAIN_PY, "module": "ours", "on_repo_path": True}
    compiled: dict[str, Any] = {**ours, "package_path": COMPILED}
    if not os.path.isdir(os.path.join(COMPILED, "fastapi_sessions")):
        compiled["missing"] = (
            f"not built: run scripts/build-compiled {os.path.relpath(COMPILED, REPO)} (bench/run does)"
        )
    return [
        Peer("fastapi", "bare FastAPI (baseline)", "py", MAIN_PY, "bare_fastapi"),
        Peer("fastapi-depends", "FastAPI + no-op Depends (floor)", "py", MAIN_PY, "bare_depends"),
        Peer("ours-memory", "fastapi_sessions memory", "py", store="memory", env={"BENCH_STORE": "memory"}, **ours),
        Peer("ours-redis", "fastapi_sessions Redis", "py", store="redis", env={"BENCH_STORE": "redis"}, **ours),
        Peer(
            "ours-postgres",
            "fastapi_sessions PostgreSQL",
            "py",
            store="postgres",
            env={"BENCH_STORE": "postgres"},
            **ours,
        ),
        Peer(
            "compiled-memory",
            "fastapi_sessions memory, compiled",
            "py",
            store="memory",
            env={"BENCH_STORE": "memory"},
            **compiled,
        ),
        Peer(
            "compiled-redis",
            "fastapi_sessions Redis, compiled",
            "py",
            store="redis",
            env={"BENCH_STORE": "redis"},
            **compiled,
        ),
        Peer("starlette-cookie", "Starlette SessionMiddleware (cookie)", "py", MAIN_PY, "starlette_cookie", "cookie"),
        Peer(
            "starsessions-memory",
            "starsessions 2.2.1 memory",
            "py",
            PEERS_PY,
            "starsessions_app",
            "memory",
            {"BENCH_STORE": "memory"},
        ),
        Peer(
            "starsessions-redis",
            "starsessions 2.2.1 Redis",
            "py",
            PEERS_PY,
            "starsessions_app",
            "redis",
            {"BENCH_STORE": "redis"},
        ),
        Peer("legacy-memory", "fastapi-sessions 0.3.2 (PyPI) memory", "py", LEGACY_PY, "legacy_app", "memory"),
        Peer("express-memory", "express-session memory (Node)", "node", store="memory", env={"BENCH_STORE": "memory"}),
        Peer(
            "express-redis",
            "express-session + connect-redis (Node)",
            "node",
            store="redis",
            env={"BENCH_STORE": "redis"},
        ),
    ]


def check_peer(peer: Peer) -> None:
    """Fill in ``peer.missing`` when the peer cannot run on this machine."""
    if peer.kind == "node":
        if shutil.which("node") is None:
            peer.missing = "node is not installed"
        elif not os.path.isdir(os.path.join(NODE_DIR, "node_modules")):
            peer.missing = "run: (cd bench/node && npm ci)"
        return
    if not os.path.exists(peer.python):
        peer.missing = f"{os.path.relpath(peer.python, REPO)} is missing: run bench/run, which creates it"
        return
    if peer.store in ("redis", "postgres") and peer.on_repo_path:
        module = f"fastapi_sessions.stores.{peer.store}"
        probe = subprocess.run(
            [peer.python, "-c", f"import {module}"], env=peer.process_env(), capture_output=True, text=True
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            peer.missing = f"{module} does not import yet ({last})"


# Processes and services.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisServer:
    """The benchmark's own redis-server on a free loopback port, pinned to the load generator's core."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="fastapi-sessions-bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = ["taskset", "-c", CLIENT_CORE, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", self.dir, "--databases", "16", "--loglevel", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cli(self, db: int, *args: str, stdin: bytes | None = None) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "-n", str(db), *args], input=stdin, capture_output=True, check=True
        )
        return out.stdout.decode("utf-8", "replace")

    def command_calls(self) -> dict[str, int]:
        calls = {}
        for line in self.cli(0, "INFO", "commandstats").splitlines():
            match = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
            if match and match.group(1) not in ("info",):
                calls[match.group(1)] = int(match.group(2))
        return calls

    def version(self) -> str:
        match = re.search(r"redis_version:(\S+)", self.cli(0, "INFO", "server"))
        return match.group(1) if match else "?"

    def pin(self, cores: str) -> None:
        if self.proc is not None:
            subprocess.run(["taskset", "-a", "-p", "-c", cores, str(self.proc.pid)], capture_output=True, check=True)

    def round_trips(self, db: int, send: Any, requests: int) -> tuple[float, float]:
        """Round trips and commands sent per request while ``send()`` makes ``requests`` sequential requests.

        A round trip is one read of the redis-server (``total_reads_processed``): pipelined commands arrive in
        one read. The commands sent are MONITOR's lines for ``db`` not marked ``lua`` (a script's own commands).
        """
        time.sleep(0.5)  # the requests still in flight when wrk stopped finish first
        monitor = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        monitor.sendall(_resp(b"MONITOR"))
        buffer = b""
        while b"\r\n" not in buffer:
            buffer += monitor.recv(4096)
        lines: list[bytes] = []

        def collect() -> None:
            data = buffer.split(b"\r\n", 1)[1]
            with contextlib.suppress(OSError):
                while chunk := monitor.recv(65536):
                    data += chunk
            lines.extend(data.split(b"\r\n"))

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as stats:
            before = _reads_processed(stats)
            send()
            after = _reads_processed(stats)
        time.sleep(0.1)
        monitor.shutdown(socket.SHUT_RDWR)
        monitor.close()
        reader.join(5)
        sent = sum(1 for line in lines if _monitor_client(line, db))
        return (after - before - 1) / requests, sent / requests


def _monitor_client(line: bytes, db: int) -> bool:
    match = re.match(rb"\+[\d.]+ \[(\d+) ([^\]]+)\]", line)
    return match is not None and int(match.group(1)) == db and match.group(2) != b"lua"


def _reads_processed(sock: socket.socket) -> int:
    """The redis-server's ``total_reads_processed``, through one INFO (which is itself one read)."""
    sock.sendall(_resp(b"INFO", b"stats"))
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2 or len(data) < _bulk_length(data):
        data += sock.recv(65536)
    match = re.search(rb"total_reads_processed:(\d+)", data)
    assert match is not None, data[:200]
    return int(match.group(1))


def _bulk_length(data: bytes) -> int:
    """The whole length of a RESP bulk string reply whose head is in ``data``."""
    head, _, _ = data.partition(b"\r\n")
    return len(head) + 2 + int(head[1:]) + 2


class Postgres:
    """The machine's PostgreSQL, with a database of the benchmark's own."""

    def __init__(self) -> None:
        self.base = os.environ.get("BENCH_POSTGRES_BASE", "postgresql://postgres@127.0.0.1:5432")
        self.url = f"{self.base}/{POSTGRES_DB}"

    def psql(self, sql: str, database: str = POSTGRES_DB) -> str:
        out = subprocess.run(
            ["psql", f"{self.base}/{database}", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def ensure(self) -> None:
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DB}'", "postgres").strip():
            self.psql(f"CREATE DATABASE {POSTGRES_DB}", "postgres")

    def reset(self) -> None:
        self.psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")

    def transactions(self, wait: bool = True) -> int:
        if wait:
            time.sleep(1.1)  # statistics reach pg_stat_database about once a second
        out = self.psql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{POSTGRES_DB}'")
        return int(out.strip() or 0)

    def version(self) -> str:
        return self.psql("SHOW server_version").strip()

    def transactions_per_request(self, sends: dict[str, Any], requests: int) -> dict[str, float]:
        """Transactions per request while each ``send()`` makes ``requests`` sequential requests, by route.

        A backend reports its counts at most once a second while busy, and an idle one that reported less
        than a second ago only after ``PGSTAT_IDLE_INTERVAL`` (10 s): so each count waits for that.
        """
        time.sleep(STATS_IDLE_FLUSH)
        first = self.transactions(wait=False)
        current = self.transactions(wait=False)
        own = current - first  # the transactions of the psql that reads the count
        result = {}
        for route, send in sends.items():
            send()
            time.sleep(STATS_IDLE_FLUSH)
            after = self.transactions(wait=False)
            result[route] = (after - current - own) / requests
            current = after
        return result


class Services:
    def __init__(self, redis: RedisServer | None, postgres: Postgres | None) -> None:
        self.redis = redis
        self.postgres = postgres

    def peer_env(self, peer: Peer) -> dict[str, str]:
        env = {}
        if self.redis is not None:
            env["BENCH_REDIS_URL"] = self.redis.url(REDIS_DB.get(peer.family, 4))
        if self.postgres is not None:
            env["BENCH_POSTGRES_URL"] = self.postgres.url
        return env

    def reset(self, peer: Peer) -> None:
        if peer.store == "redis" and self.redis is not None:
            self.redis.cli(REDIS_DB.get(peer.family, 4), "FLUSHDB")
        if peer.store == "postgres" and self.postgres is not None:
            self.postgres.reset()

    def counter(self, peer: Peer) -> tuple[str, Any]:
        """A snapshot of the store's own statistics: Redis commands, PostgreSQL transactions."""
        if peer.store == "redis" and self.redis is not None:
            return "redis", self.redis.command_calls()
        if peer.store == "postgres" and self.postgres is not None:
            return "postgres", self.postgres.transactions()
        return "none", None

    def round_trips(self, peer: Peer, send: Any, requests: int) -> tuple[float, str]:
        """Store round trips per request over ``requests`` sequential requests, and what they were counted from."""
        if peer.store == "redis" and self.redis is not None:
            trips, sent = self.redis.round_trips(REDIS_DB.get(peer.family, 4), send, requests)
            return trips, f"{sent:.2f} commands"
        return 0.0, ""


def store_ops(before: tuple[str, Any], after: tuple[str, Any], requests: int) -> tuple[float, str]:
    """Store operations per request between two snapshots, and the commands behind them."""
    kind, first = before
    if kind == "none" or requests <= 0:
        return 0.0, ""
    if kind == "postgres":
        return (after[1] - first) / requests, "transactions"
    deltas = {name: after[1].get(name, 0) - first.get(name, 0) for name in after[1]}
    deltas = {name: count for name, count in deltas.items() if count > 0}
    total = sum(deltas.values())
    detail = " ".join(f"{name.upper()} {count / requests:.2f}" for name, count in sorted(deltas.items()))
    return total / requests, detail


# One server.


class Server:
    """One peer's server: a single process, or with ``workers`` > 1 uvicorn's supervisor (Node: cluster.js)."""

    def __init__(
        self, peer: Peer, services: Services, loop: str, http: str, workers: int = 1, cores: str = SERVER_CORE
    ) -> None:
        self.peer = peer
        self.workers = workers
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{peer.key}-", suffix=".log", delete=False)
        extra = {**services.peer_env(peer), "PORT": str(self.port), "BENCH_WORKERS": str(workers)}
        if peer.kind == "node":
            cmd = ["taskset", "-c", cores, "node", "server.js" if workers == 1 else "cluster.js"]
            cwd = NODE_DIR
        else:
            # With several workers, each one's "Application startup complete." (info) says it is ready.
            level = "warning" if workers == 1 else "info"
            cmd = ["taskset", "-c", cores, peer.python, "-m", "uvicorn", f"{peer.module}:app"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--loop", loop, "--http", http]
            cmd += ["--workers", str(workers), "--log-level", level, "--no-access-log", "--lifespan", "on"]
            cwd = APPS
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=peer.process_env(extra), stdout=self.log, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> "Server":
        try:
            wait_port(self.port, self.proc)
            if self.workers > 1:
                self.wait_workers()
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{self.peer.key}: {exc}\n{self.tail()}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)

    def stop(self) -> None:
        tree = process_tree(self.proc.pid)
        stop(self.proc)
        for pid in tree[1:]:  # a worker its supervisor left behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def wait_workers(self, timeout: float = 30.0) -> None:
        """Wait until every worker is ready, so that the load's connections spread over all of them."""
        marker = "listening " if self.peer.kind == "node" else "Application startup complete."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            with open(self.log.name, errors="replace") as log:
                if log.read().count(marker) >= self.workers:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.workers} workers were not ready within {timeout}s")

    def tail(self) -> str:
        with open(self.log.name, errors="replace") as log:
            return "".join(log.readlines()[-15:])

    def cpu_by_process(self) -> dict[int, float]:
        """utime+stime of the server's process and of every process under it (workers, supervisor), in s."""
        return {pid: process_cpu(pid) for pid in process_tree(self.proc.pid)}

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process().values())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def setup(self, size: int = 0) -> str:
        """Create a session through /setup and return the Cookie header that carries it."""
        with urllib.request.urlopen(self.url(f"/setup?size={size}"), timeout=10) as response:
            cookies = response.headers.get_all("Set-Cookie") or []
        return "; ".join(cookie.split(";", 1)[0] for cookie in cookies)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it, parents first (``/proc/PID/task/TID/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
    return found


def process_cpu(pid: int) -> float:
    """utime+stime of one process (all its threads), in seconds; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: str) -> float:
    """CPU time the whole machine spent busy on one core (every process, the kernel and interrupts)."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line.split()[1:9])
                return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return float("nan")


# wrk.


@dataclasses.dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(url: str, seconds: int, method: str, cookie: str, lua: str, cores: str = CLIENT_CORE) -> WrkResult:
    cmd = ["taskset", "-c", cores, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, seconds)}s"]
    cmd += ["--latency", "-s", lua, url]
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_COOKIE": cookie}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (
        r"Non-2xx or 3xx responses: (\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        match = re.search(pattern, out)
        if match:
            errors += sum(int(group) for group in match.groups())
    return WrkResult(requests, rps, _latency(out, "50%"), _latency(out, "99%"), errors)


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# The HTTP passes.


@dataclasses.dataclass
class Row:
    peer: Peer
    route: str
    rps: float
    cpu_us: float
    p50_ms: float
    p99_ms: float
    ops: float
    ops_detail: str
    errors: int
    others: float  # share of the server's core used by other processes during the run
    trips: float = 0.0  # store round trips per request
    trips_detail: str = ""


def http_pass(
    peers: list[Peer],
    services: Services,
    loop: str,
    http: str,
    args: argparse.Namespace,
    lua: str,
    race_out: list[tuple[Peer, int, int]] | None,
    postgres_trips: bool = True,
) -> list[Row]:
    """Start every peer's server, then measure peer by peer, route by route, ``args.rounds`` times round-robin.

    Interleaving the rounds spreads any outside disturbance over all peers alike; each cell keeps its
    best round (the highest req/s, with that round's CPU, latency and store operations).
    """
    runs: dict[tuple[str, str], list[Row]] = {}
    trips: dict[tuple[str, str], tuple[float, str]] = {}
    with contextlib.ExitStack() as stack:
        servers = []
        for peer in peers:
            if peer.kind == "node" and (loop, http) != PASSES[0]:
                continue
            services.reset(peer)
            server = stack.enter_context(Server(peer, services, loop, http))
            cookie = server.setup() if peer.store != "none" else ""
            if peer.store != "none" and not cookie:
                raise RuntimeError(f"{peer.key}: /setup set no cookie\n{server.tail()}")
            servers.append((peer, server, cookie))
        for round_index in range(args.rounds):
            print(f"  round {round_index + 1}/{args.rounds}:", end="", flush=True, file=sys.stderr)
            for peer, server, cookie in servers:
                for route in args.routes:
                    method, path = ROUTES[route]
                    url = server.url(path)
                    if round_index == 0:
                        wrk(url, args.warmup, method, cookie, lua)
                    before = services.counter(peer)
                    cpu, busy, clock = server.cpu_seconds(), core_busy_seconds(SERVER_CORE), time.monotonic()
                    result = wrk(url, args.duration, method, cookie, lua)
                    cpu = server.cpu_seconds() - cpu
                    others = (core_busy_seconds(SERVER_CORE) - busy - cpu) / (time.monotonic() - clock)
                    after = services.counter(peer)
                    ops, detail = store_ops(before, after, result.requests)
                    row = Row(
                        peer,
                        route,
                        result.rps,
                        cpu / max(result.requests, 1) * 1e6,
                        result.p50_ms,
                        result.p99_ms,
                        ops,
                        detail,
                        result.errors,
                        max(others, 0.0),
                    )
                    runs.setdefault((peer.key, route), []).append(row)
                    if round_index == 0 and peer.store == "redis":
                        send = functools.partial(sequential, server.port, method, path, cookie, ROUND_TRIP_REQUESTS)
                        trips[(peer.key, route)] = services.round_trips(peer, send, ROUND_TRIP_REQUESTS)
                print(f" {peer.key}", end="", flush=True, file=sys.stderr)
            print(file=sys.stderr)
        for peer, server, cookie in servers:
            if postgres_trips and peer.store == "postgres" and services.postgres is not None:
                print(f"  {peer.key}: transactions per request (about 10 s per route)", file=sys.stderr)
                sends = {
                    route: functools.partial(sequential, server.port, *ROUTES[route], cookie, ROUND_TRIP_REQUESTS)
                    for route in args.routes
                    if route != "bare"
                }
                counts = services.postgres.transactions_per_request(sends, ROUND_TRIP_REQUESTS)
                trips.update({(peer.key, route): (count, "transactions") for route, count in counts.items()})
        if race_out is not None:
            for peer, server, _cookie in servers:
                if peer.store == "none":
                    continue
                kept, reads = asyncio.run(race(server.port, args.race_writes, args.race_readers))
                race_out.append((peer, kept, reads))
                print(f"  race {peer.key}: {kept}/{args.race_writes} kept", file=sys.stderr)
    best = [max(cell, key=lambda row: row.rps) for cell in runs.values()]
    for row in best:
        if (row.peer.key, row.route) in trips:
            row.trips, row.trips_detail = trips[(row.peer.key, row.route)]
        elif row.peer.store in ("redis", "postgres") and row.route != "bare":
            row.trips = float("nan")  # counted in the first pass only
    return best


def sequential(port: int, method: str, path: str, cookie: str, count: int) -> None:
    """``count`` requests one after another on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": cookie} if cookie else {}
    try:
        for _ in range(count):
            connection.request(method, path, body=b"" if method == "POST" else None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {body[:200]!r}")
    finally:
        connection.close()


# Several workers sharing one store.

WORKERS_NOTES = """
Pinning: none. Each server (uvicorn's supervisor and its workers; Node's cluster primary and its workers),
wrk and the benchmark's redis-server may all run on both cores (`taskset -c {cores}`, the redis-server
re-pinned for this section only); PostgreSQL is the machine's, unpinned as always. The 1-worker and the
2-worker servers run under the same rule, side by side in interleaved rounds, best round kept. So the
scaling factor (2-worker req/s over 1-worker req/s) is what a second worker buys on this 2-core machine
while the load generator and the store run on the same two cores: a perfect 2.0x is not possible here,
since at 1 worker wrk and the store already use much of the second core. The ratios to bare FastAPI at
2 workers compare the peers under the same rule.
CPU µs/req: utime+stime of every process of the server (the supervisor or primary too), per request.
busiest worker: the busiest worker process's share of all the workers' CPU during the run (50% is an even
split); uvicorn's workers accept from one shared socket, so the kernel decides which worker gets each of
wrk's {connections} keep-alive connections; Node's cluster primary hands them out in turn. Near 100%, one
worker accepted every connection of that run and the other sat idle: that cell measured one worker.
Left out: the memory stores (fastapi_sessions, starsessions, fastapi-sessions 0.3.2, express-session),
whose sessions live in one process, so with two workers a request that reaches the other worker finds no
session. Starlette's cookie sessions need no store, so they run here."""


@dataclasses.dataclass
class WorkersRow:
    peer: Peer
    route: str
    workers: int
    rps: float
    cpu_us: float
    p99_ms: float
    busiest: float  # the busiest worker's share of the workers' CPU
    errors: int


def workers_pass(peers: list[Peer], services: Services, args: argparse.Namespace, lua: str) -> list[WorkersRow]:
    """Every shared-store peer at 1 and at 2 workers, unpinned, in interleaved rounds; each cell's best round."""
    runs: dict[tuple[str, str, int], list[WorkersRow]] = {}
    routes = [route for route in args.routes if route != "bare"]
    with contextlib.ExitStack() as stack:
        servers = []
        for peer in peers:
            services.reset(peer)
            for count in WORKER_COUNTS:
                server = stack.enter_context(Server(peer, services, *PASSES[0], workers=count, cores=ALL_CORES))
                cookie = server.setup() if peer.store != "none" else ""
                if peer.store != "none" and not cookie:
                    raise RuntimeError(f"{peer.key}: /setup set no cookie\n{server.tail()}")
                servers.append((peer, count, server, cookie))
        for round_index in range(args.rounds):
            print(f"  round {round_index + 1}/{args.rounds}:", end="", flush=True, file=sys.stderr)
            for peer, count, server, cookie in servers:
                for route in routes:
                    method, path = ROUTES[route]
                    url = server.url(path)
                    if round_index == 0:
                        wrk(url, args.warmup, method, cookie, lua, ALL_CORES)
                    before = server.cpu_by_process()
                    result = wrk(url, args.duration, method, cookie, lua, ALL_CORES)
                    after = server.cpu_by_process()
                    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
                    workers = sorted((spent[pid] for pid in after if pid != server.proc.pid), reverse=True)
                    busiest = workers[0] / sum(workers) if count > 1 and workers and sum(workers) else float("nan")
                    row = WorkersRow(
                        peer,
                        route,
                        count,
                        result.rps,
                        sum(spent.values()) / max(result.requests, 1) * 1e6,
                        result.p99_ms,
                        busiest,
                        result.errors,
                    )
                    runs.setdefault((peer.key, route, count), []).append(row)
                print(f" {peer.key}x{count}", end="", flush=True, file=sys.stderr)
            print(file=sys.stderr)
    return [max(cell, key=lambda row: row.rps) for cell in runs.values()]


def workers_table(rows: list[WorkersRow]) -> list[str]:
    cells = {(row.peer.key, row.route, row.workers): row for row in rows}
    lines = [
        "| peer | route | req/s, 1 worker | req/s, 2 workers | scaling | x bare, 1 worker | x bare, 2 workers "
        "| CPU µs/req, 1 / 2 | p99 ms, 1 / 2 | busiest worker | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = {(row.peer.key, row.route): row.peer for row in rows}
    for (key, route), peer in order.items():
        one, two = cells.get((key, route, 1)), cells.get((key, route, 2))
        base_one, base_two = cells.get(("fastapi", route, 1)), cells.get(("fastapi", route, 2))
        if one is None or two is None:
            continue
        ratio_one = one.rps / base_one.rps if base_one else float("nan")
        ratio_two = two.rps / base_two.rps if base_two else float("nan")
        lines.append(
            f"| {peer.label} | {route} | {fmt(one.rps)} | {fmt(two.rps)} | {fmt(two.rps / one.rps, 2)}x "
            f"| {fmt(ratio_one, 2)} | {fmt(ratio_two, 2)} | {fmt(one.cpu_us, 1)} / {fmt(two.cpu_us, 1)} "
            f"| {fmt(one.p99_ms, 2)} / {fmt(two.p99_ms, 2)} | {fmt(two.busiest * 100)}% | {one.errors + two.errors} |"
        )
    return lines


# In-process.


def inproc(peer: Peer, services: Services, *options: str) -> dict[str, Any]:
    cmd = ["taskset", "-c", SERVER_CORE, peer.python, os.path.join(BENCH, "inproc.py"), peer.module, *options]
    out = subprocess.run(cmd, cwd=APPS, env=peer.process_env(services.peer_env(peer)), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{peer.key} in-process: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# The lost-update race.


class Browser:
    """A minimal keep-alive HTTP/1.1 client over one connection, sharing a cookie jar with others.

    The race needs many cheap concurrent clients; a full HTTP client library would spend more CPU
    than the servers under test (the load generator shares its core with wrk and Redis).
    """

    def __init__(self, port: int, jar: dict[str, str]) -> None:
        self.port = port
        self.jar = jar
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        cookie = "; ".join(f"{name}={value}" for name, value in self.jar.items())
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        writer.write((head + "\r\n").encode("latin-1"))
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                pair, _, attributes = value.strip().partition(";")
                key, _, cookie_value = pair.partition("=")
                if "max-age=0" in attributes.lower().replace(" ", "") or cookie_value in ("", "''"):
                    self.jar.pop(key, None)
                else:
                    self.jar[key] = cookie_value
        body = await reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {body[:200]!r}")
        return status, body

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def race(port: int, writes: int, readers: int, limit: float = 120.0) -> tuple[int, int]:
    """``writes`` sequential increments racing ``readers`` clients reading in a loop, all sharing one cookie jar."""
    jar: dict[str, str] = {}
    writer = Browser(port, jar)
    clients = [Browser(port, jar) for _ in range(readers)]
    try:
        await writer.request("GET", "/setup")
        start = json.loads((await writer.request("GET", "/read"))[1])["counter"]
        done = asyncio.Event()
        reads = 0

        async def reader(client: Browser) -> None:
            nonlocal reads
            while not done.is_set():
                await client.request("GET", "/read")
                reads += 1

        async def write_all() -> None:
            for _ in range(writes):
                await writer.request("POST", "/write")

        tasks = [asyncio.create_task(reader(client)) for client in clients]
        await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(write_all(), limit)
        finally:
            done.set()
            await asyncio.gather(*tasks)
        final = json.loads((await writer.request("GET", "/read"))[1])["counter"]
    finally:
        for client in [writer, *clients]:
            client.close()
    return final - start, reads


# Cost that grows with the work: live sessions in the store.


def fill_redis(redis: RedisServer, db: int, count: int) -> None:
    """Copy the one session in ``db`` until the database holds ``count`` sessions (RESTORE via redis-cli --pipe)."""
    import redis as redis_py

    client = redis_py.Redis(port=redis.port, db=db)
    templates = []
    for raw_key in client.scan_iter(count=1000):
        key = raw_key.decode("latin-1")
        match = max(re.finditer(r"[0-9A-Za-z_-]{16,}", key), key=lambda m: len(m.group(0)), default=None)
        if match is None:
            continue  # an index key, not a session
        dump = client.dump(raw_key)
        ttl = client.pttl(raw_key)
        templates.append((key[: match.start()], len(match.group(0)), key[match.end() :], dump, max(int(ttl), 0)))
    client.close()
    if not templates:
        raise RuntimeError("no session key found to copy")
    seed = secrets.token_hex(4)

    def commands() -> Iterator[bytes]:
        for index in range(count - 1):
            for head, width, tail, raw, ttl in templates:
                name = f"{head}{(seed + format(index, 'x')).rjust(width, '0')[:width]}{tail}".encode()
                yield _resp(b"RESTORE", name, str(ttl).encode(), raw, b"REPLACE")

    proc = subprocess.Popen(
        ["redis-cli", "-p", str(redis.port), "-n", str(db), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert proc.stdin is not None
    batch: list[bytes] = []
    for command in commands():
        batch.append(command)
        if len(batch) >= 20000:
            proc.stdin.write(b"".join(batch))
            batch = []
    proc.stdin.write(b"".join(batch))
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("redis-cli --pipe failed")


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def fill_postgres(postgres: Postgres, cookie_key: str, count: int) -> None:
    """Copy the one session row in the benchmark database until its table holds ``count`` rows."""
    tables = postgres.psql(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea')"
    )
    for line in tables.splitlines():
        table, column = line.split("|")
        hit = postgres.psql(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text = \'{cookie_key}\'').strip()
        if hit == "1":
            columns = [
                name
                for name in postgres.psql(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    f"AND table_name = '{table}' AND is_generated = 'NEVER' ORDER BY ordinal_position"
                ).splitlines()
                if name
            ]
            width = len(cookie_key)
            values = [
                f"substr(md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), 1, {width})"
                if name == column
                else f'"{name}"'
                for name in columns
            ]
            quoted = ", ".join(f'"{name}"' for name in columns)
            postgres.psql(
                f'INSERT INTO "{table}" ({quoted}) SELECT {", ".join(values)} FROM "{table}", '
                f'generate_series(1, {count - 1}) AS g WHERE "{column}" = \'{cookie_key}\'; ANALYZE "{table}"'
            )
            return
    raise RuntimeError("no session row found to copy")


def our_store_key(cookie: str) -> str:
    """The store key of the session a cookie of ours names (the hash of its ID)."""
    sys.path.insert(0, REPO)
    from fastapi_sessions.signing import store_key

    name, value = cookie.split("=", 1)
    return store_key(value.rsplit(".", 1)[0], name.removeprefix("__Host-"))


# The Redis clients side by side.

CLIENT_LABELS = {
    "builtin": "RespClient (ours, `?driver=builtin`)",
    "redis-py": "redis-py asyncio (`?driver=redis-py`)",
    "coredis": "coredis",
}
CLIENT_WORK = {
    "load": "RedisStore.load (HGETALL)",
    "update": "RedisStore.update (EVALSHA)",
    "get": "client GET (no store)",
}
CLIENTS_NOTES = """
Each client runs in one process of the project's venv (uvloop), pinned to core {server_core}, against the
benchmark's redis-server on core {client_core}; `bench/redis_clients.py` does the work. ops/s: operations
completed per second by that many concurrent tasks (each awaits its operation, then starts the next);
x ours: over RespClient's ops/s in the same cell; CPU µs/op: that process's CPU time per operation; p50
and p99: the latency of one operation, in µs, as its caller saw it. Each cell is the best of {rounds}
interleaved round(s) of {seconds} s. The store rows are the work of a request's session (a read loads, a
write updates): RespClient and redis-py under `RedisStore.from_url`, coredis under `RedisStore` through
an adapter offering the commands the store sends; `get` is each client's own GET, the cost per command.
On a busy machine (see the load average above) read CPU µs/op before ops/s: other processes' time
slices land in the wall-clock columns, most of all at 1 task, where every operation waits on a wake-up."""


def redis_clients(services: Services, args: argparse.Namespace) -> list[str]:
    """Run bench/redis_clients.py against the benchmark's redis-server; its results as a Markdown section."""
    assert services.redis is not None
    url = services.redis.url(REDIS_DB["clients"])
    cmd = ["taskset", "-c", SERVER_CORE, MAIN_PY, os.path.join(BENCH, "redis_clients.py"), "--url", url]
    cmd += ["--seconds", str(args.client_seconds), "--rounds", str(args.rounds)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SESSION_")}
    env["PYTHONPATH"] = REPO
    busy, clock = core_busy_seconds(SERVER_CORE), time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench/redis_clients.py: {out.stderr.strip()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    others = max((core_busy_seconds(SERVER_CORE) - busy - own) / (time.monotonic() - clock), 0.0)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    cells = {(cell["client"], cell["workload"], cell["concurrency"]): cell for cell in result["cells"]}
    found = list(dict.fromkeys(cell["client"] for cell in result["cells"]))
    lines = [
        "## Redis clients side by side (in-process, one client per row)",
        "",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in result["versions"].items()),
        f"- other processes used {others:.0%} of the clients' core during the run",
        "",
        "| work | tasks | client | ops/s | x ours | CPU µs/op | p50 µs | p99 µs |",
        "|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for workload, concurrency in dict.fromkeys((cell["workload"], cell["concurrency"]) for cell in result["cells"]):
        ours = cells.get(("builtin", workload, concurrency))
        for client in found:
            cell = cells.get((client, workload, concurrency))
            if cell is None:
                continue
            ratio = cell["ops_s"] / ours["ops_s"] if ours else float("nan")
            label = CLIENT_LABELS.get(client, client)
            lines.append(
                f"| {CLIENT_WORK[workload]} | {concurrency} | {label} | {fmt(cell['ops_s'])} | {fmt(ratio, 2)}"
                f" | {fmt(cell['cpu_us'], 1)} | {fmt(cell['p50_us'])} | {fmt(cell['p99_us'])} |"
            )
    lines += [
        CLIENTS_NOTES.format(
            server_core=SERVER_CORE, client_core=CLIENT_CORE, rounds=args.rounds, seconds=args.client_seconds
        ),
        "",
    ]
    return lines


# Report.


def versions(peers: list[Peer], services: Services) -> list[str]:
    lines = []
    probe = "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
    seen = set()
    for python, names in (
        (
            MAIN_PY,
            [
                "fastapi",
                "starlette",
                "pydantic",
                "uvicorn",
                "uvloop",
                "httptools",
                "h11",
                "itsdangerous",
                "redis",
                "hiredis",
                "asyncpg",
            ],
        ),
        (PEERS_PY, ["starsessions", "fastapi", "starlette", "redis"]),
        (LEGACY_PY, ["fastapi-sessions", "fastapi", "pydantic"]),
    ):
        if python in seen or not os.path.exists(python):
            continue
        seen.add(python)
        out = subprocess.run([python, "-I", "-c", probe, *names], capture_output=True, text=True)
        lines.append(
            f"- `{os.path.relpath(os.path.dirname(os.path.dirname(python)), REPO)}`: "
            f"{out.stdout.strip() or out.stderr.strip()[-200:]}"
        )
    ours = {}
    exec(open(os.path.join(REPO, "fastapi_sessions", "__version__.py")).read(), ours)
    rev = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines.insert(0, f"- fastapi_sessions {ours.get('__version__', '?')} (this repository, commit {rev}, working tree)")
    if any(peer.kind == "node" and not peer.missing for peer in peers):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        pkgs = []
        for name in ("express", "express-session", "connect-redis", "redis"):
            try:
                with open(os.path.join(NODE_DIR, "node_modules", name, "package.json")) as file:
                    pkgs.append(f"{name}@{json.load(file)['version']}")
            except OSError:
                pass
        lines.append(f"- Node {node}: {' '.join(pkgs)}")
    tools = []
    if shutil.which("wrk") is not None:
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        tools.append((wrk_version.stdout + wrk_version.stderr).strip().splitlines()[0].split(" [")[0])
    if services.redis is not None:
        tools.append(f"redis-server {services.redis.version()} (own instance, core {CLIENT_CORE})")
    if services.postgres is not None:
        try:
            tools.append(f"PostgreSQL {services.postgres.version()}")
        except subprocess.CalledProcessError:
            pass
    tools.append(f"Python {platform.python_version()}")
    lines.append("- " + ", ".join(tools))
    return lines


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    system = f"{platform.system()} {platform.release()}"
    return f"nproc {os.cpu_count()}, {model}, {system}, load average before the run {load[0]:.2f}"


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def http_table(rows: list[Row]) -> list[str]:
    base = {row.route: row for row in rows if row.peer.key == "fastapi"}
    lines = [
        "| peer | route | req/s | x bare | CPU µs/req | +CPU µs/req | x bare by CPU | p50 ms | p99 ms | p99 x bare "
        "| store ops/req | store round trips/req | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        ref = base.get(row.route)
        ratio = row.rps / ref.rps if ref else float("nan")
        added = row.cpu_us - ref.cpu_us if ref else float("nan")
        by_cpu = ref.cpu_us / row.cpu_us if ref and row.cpu_us else float("nan")
        p99 = row.p99_ms / ref.p99_ms if ref and ref.p99_ms else float("nan")
        ops = "0" if not row.ops else f"{row.ops:.2f} ({row.ops_detail})"
        trips = "-" if row.trips != row.trips else f"{row.trips:.2f} ({row.trips_detail})" if row.trips else "0"
        lines.append(
            f"| {row.peer.label} | {row.route} | {fmt(row.rps)} | {fmt(ratio, 2)} | {fmt(row.cpu_us, 1)} "
            f"| {fmt(added, 1)} | {fmt(by_cpu, 2)} | {fmt(row.p50_ms, 2)} | {fmt(row.p99_ms, 2)} | {fmt(p99, 2)} "
            f"| {ops} | {trips} | {row.errors} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one server pass, short runs (~2 minutes)")
    parser.add_argument(
        "--peers", help="comma-separated peer keys (default: all that can run here); 'fastapi' is always added"
    )
    parser.add_argument("--list", action="store_true", help="list the peers and whether each can run here")
    parser.add_argument("--duration", type=int, help="seconds of each measured wrk run (default 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per cell, best kept (default 2, quick 1)")
    parser.add_argument("--warmup", type=int, help="seconds of wrk warm-up before each run (default 1)")
    parser.add_argument("--passes", help="server passes, e.g. 'uvloop+httptools,asyncio+h11' (quick: the first)")
    parser.add_argument("--routes", default="bare,read,write")
    parser.add_argument("--budget", type=float, help="seconds of in-process timing per route (default 1.5, quick 0.3)")
    parser.add_argument("--sizes", default="100,10000,100000", help="session sizes in bytes for the size scan")
    parser.add_argument(
        "--live-sessions", help="live sessions for the store scan (default 1,10000,100000,1000000; quick 1,10000)"
    )
    parser.add_argument("--race-writes", type=int, default=300)
    parser.add_argument("--race-readers", type=int, default=16)
    parser.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    parser.add_argument(
        "--only", default="", help="comma-separated sections to run, the others skipped (e.g. --only workers)"
    )
    parser.add_argument(
        "--client-seconds", type=float, help="seconds of each Redis client run (default 1.5, quick 0.75)"
    )
    parser.add_argument(
        "--output", help="where to write the report (default results/latest.md; with --only, results/<sections>.md)"
    )
    args = parser.parse_args()
    args.duration = args.duration or 2
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.warmup = args.warmup or 1
    args.budget = args.budget or (0.3 if args.quick else 1.5)
    args.routes = [route for route in args.routes.split(",") if route]
    live = [int(n) for n in (args.live_sessions or ("1,10000" if args.quick else "1,10000,100000,1000000")).split(",")]
    passes = PASSES[:1] if args.quick else PASSES
    if args.passes:
        passes = [tuple(item.split("+")) for item in args.passes.split(",")]  # type: ignore[misc]
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        skip |= set(SECTIONS) - set(args.only.split(","))
    elif args.quick:
        skip.add("workers")  # --quick stays at about 2.5 minutes; `--quick --only http,workers` adds it
    unknown_sections = (skip | set(filter(None, args.only.split(",")))) - set(SECTIONS)
    if unknown_sections:
        parser.error(f"unknown sections: {', '.join(sorted(unknown_sections))} (the sections: {', '.join(SECTIONS)})")
    args.client_seconds = args.client_seconds or (0.75 if args.quick else 1.5)
    if args.output is None:
        name = "-".join(sorted(set(args.only.split(",")))) if args.only else "latest"
        args.output = os.path.join(RESULTS, f"{name}.md")

    peers = all_peers()
    for peer in peers:
        check_peer(peer)
    if args.list:
        for peer in peers:
            print(f"{peer.key:22} {peer.label:42} {'ok' if not peer.missing else 'skipped: ' + peer.missing}")
        return 0
    if args.peers:
        wanted = set(args.peers.split(",")) | {"fastapi"}
        unknown = wanted - {peer.key for peer in peers}
        if unknown:
            parser.error(f"unknown peers: {', '.join(sorted(unknown))} (see --list)")
        peers = [peer for peer in peers if peer.key in wanted]
    for tool in ("wrk", "taskset", "redis-server", "redis-cli"):
        if tool == "wrk" and {"http", "workers", "race"} <= skip:
            continue
        if shutil.which(tool) is None:
            print(
                f"{tool} is missing: apt-get update && apt-get install -y wrk util-linux redis-server", file=sys.stderr
            )
            return 2
    skipped = [peer for peer in peers if peer.missing]
    peers = [peer for peer in peers if not peer.missing]
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="fastapi-sessions-bench-")
    if skip >= {"http", "workers", "inproc", "race", "sizes", "live"}:
        peers, skipped = [], []  # only the clients section: no server to start
    redis = RedisServer() if "clients" not in skip or any(peer.store == "redis" for peer in peers) else None
    postgres = Postgres() if any(peer.store == "postgres" for peer in peers) else None
    services = Services(redis, postgres)
    out: list[str] = []
    command = (
        "bench/run " + " ".join(sys.argv[1:])
        if os.environ.get("BENCH_WRAPPER")
        else "python bench/run.py " + " ".join(sys.argv[1:])
    )
    try:
        if redis is not None:
            redis.start()
        if postgres is not None:
            postgres.ensure()
        out += [
            "# fastapi_sessions benchmark",
            "",
            f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {machine()}",
            f"- command: `{command.strip()}`",
        ]
        if peers:
            out.append(
                f"- method: uvicorn, 1 worker, `taskset -c {SERVER_CORE}`; `taskset -c {CLIENT_CORE} wrk -t1 "
                f"-c{CONNECTIONS} -d{args.duration}s --latency` after a {args.warmup} s warm-up; one session cookie "
                "shared by all connections; ratios are against bare FastAPI's same route in the same pass"
            )
        out += [
            "- versions:",
            *versions(peers, services),
        ]
        if skipped:
            out.append("- not run: " + "; ".join(f"{peer.key} ({peer.missing})" for peer in skipped))
        out.append("")
        http_rows: dict[str, list[Row]] = {}
        lua = os.path.join(scratch, "session.lua")
        with open(lua, "w") as file:
            file.write(WRK_LUA)
        race_rows: list[tuple[Peer, int, int]] = []
        race_head = [
            f"## Lost updates: {args.race_writes} sequential POST /write racing {args.race_readers} clients reading "
            "the same session (one shared cookie jar, like a browser's tabs; uvloop+httptools)",
            "",
            "| peer | increments kept | reads during the race |",
            "|---|--:|--:|",
        ]
        if "http" not in skip:
            for index, (loop, http) in enumerate(passes):
                print(f"HTTP pass {loop}+{http}", file=sys.stderr)
                with_race = race_rows if index == 0 and "race" not in skip and (loop, http) == PASSES[0] else None
                rows = http_pass(peers, services, loop, http, args, lua, with_race, postgres_trips=index == 0)
                http_rows[f"{loop}+{http}"] = rows
                others = statistics.median(row.others for row in rows)
                out += [f"## HTTP: uvicorn --loop {loop} --http {http}", "", *http_table(rows), ""]
                out += [
                    f"Other processes used {others:.0%} of the server's core during the median run"
                    + (
                        " (a busy machine: read the ratios and CPU columns, not the absolute req/s)."
                        if others > 0.1
                        else "."
                    ),
                    "",
                ]
            out += [
                HTTP_NOTES.format(rounds=args.rounds, trip_requests=ROUND_TRIP_REQUESTS),
                "",
            ]
        worker_peers = [peer for peer in peers if peer.key in WORKER_PEERS]
        if "workers" not in skip and worker_peers:
            print("workers: 1 and 2 per server", file=sys.stderr)
            if redis is not None:
                redis.pin(ALL_CORES)
            try:
                worker_rows = workers_pass(worker_peers, services, args, lua)
            finally:
                if redis is not None:
                    redis.pin(CLIENT_CORE)
            out += [
                "## Workers: 1 and 2 server processes sharing the store (uvicorn --workers 2; Node: cluster; "
                "uvloop+httptools; nothing pinned)",
                "",
                *workers_table(worker_rows),
                WORKERS_NOTES.format(cores=ALL_CORES, connections=CONNECTIONS),
                "",
            ]
        if "race" not in skip and not race_rows:
            print("race", file=sys.stderr)
            for peer in peers:
                if peer.store == "none":
                    continue
                services.reset(peer)
                with Server(peer, services, *PASSES[0]) as server:
                    kept, reads = asyncio.run(race(server.port, args.race_writes, args.race_readers))
                race_rows.append((peer, kept, reads))
        if race_rows:
            out += race_head
            out += [f"| {peer.label} | {kept} / {args.race_writes} | {reads} |" for peer, kept, reads in race_rows]
            out.append("")

        inproc_results: dict[str, dict[str, Any]] = {}
        sizes = [int(size) for size in args.sizes.split(",") if size] if "sizes" not in skip else []
        if "inproc" not in skip or sizes:
            print("in-process", file=sys.stderr)
            for peer in peers:
                if peer.kind != "py":
                    continue
                services.reset(peer)
                options = [
                    "--routes",
                    ",".join(args.routes) if "inproc" not in skip else "",
                    "--budget",
                    str(args.budget),
                ]
                if sizes and peer.store != "none":
                    options += ["--sizes", ",".join(map(str, sizes))]
                inproc_results[peer.key] = inproc(peer, services, *options)
                print(f"  {peer.key}", file=sys.stderr)
        if "inproc" not in skip:
            out += ["## In-process (no server, no network)", ""]
            out += [
                "| peer | " + " | ".join(f"{route} CPU µs | {route} +CPU µs | {route} wall µs" for route in args.routes)
            ]
            out[-1] += " |"
            out += ["|---|" + "--:|--:|--:|" * len(args.routes)]
            bare = inproc_results.get("fastapi", {}).get("routes", {})
            for key, result in inproc_results.items():
                cells = []
                for route in args.routes:
                    timing = result["routes"][route]
                    added = f"{timing['cpu_us'] - bare[route]['cpu_us']:+.1f}" if route in bare else "-"
                    cells.append(f"{timing['cpu_us']:.1f} | {added} | {timing['us']:.1f}")
                out.append(f"| {next(p.label for p in peers if p.key == key)} | " + " | ".join(cells) + " |")
            out += [INPROC_NOTES, ""]
        if sizes:
            out += ["## Read cost by session size (in-process, CPU µs / wall µs per GET /read)", ""]
            out += ["| peer | " + " | ".join(f"{size:,} B" for size in sizes) + " |", "|---|" + "--:|" * len(sizes)]
            for key, result in inproc_results.items():
                if result["sizes"]:
                    label = next(p.label for p in peers if p.key == key)
                    timings = [result["sizes"][str(size)] for size in sizes]
                    out.append(
                        f"| {label} | " + " | ".join(f"{t['cpu_us']:.0f} / {t['us']:.0f}" for t in timings) + " |"
                    )
            out += ["", "The session holds a string of that many bytes besides the counter.", ""]

        if "live" not in skip:
            stored = [peer for peer in peers if peer.kind == "py" and peer.store in ("redis", "postgres")]
            if stored:
                print("live sessions", file=sys.stderr)
                out += ["## Read cost by live sessions in the store (in-process, CPU µs / wall µs per GET /read)", ""]
                out += ["| peer | " + " | ".join(f"{n:,}" for n in live) + " |", "|---|" + "--:|" * len(live)]
                for peer in stored:
                    cells = []
                    for count in live:
                        services.reset(peer)
                        cookie = inproc(peer, services, "--setup-only")["cookie"]
                        fill_started = time.monotonic()
                        if count > 1 and peer.store == "redis" and redis is not None:
                            fill_redis(redis, REDIS_DB[peer.family], count)
                        elif count > 1 and peer.store == "postgres" and postgres is not None:
                            fill_postgres(postgres, our_store_key(cookie), count)
                        fill = time.monotonic() - fill_started
                        result = inproc(
                            peer, services, "--cookie", cookie, "--routes", "read", "--budget", str(args.budget)
                        )
                        timing = result["routes"]["read"]
                        cells.append(f"{timing['cpu_us']:.0f} / {timing['us']:.0f}")
                        print(f"  {peer.key} {count:,}: {cells[-1]} µs (fill {fill:.1f}s)", file=sys.stderr)
                    services.reset(peer)
                    out.append(f"| {peer.label} | " + " | ".join(cells) + " |")
                out += [
                    "",
                    "The store is filled with copies of a real session record (Redis: DUMP/RESTORE through "
                    "`redis-cli --pipe`; PostgreSQL: INSERT ... SELECT from generate_series), each with its own key.",
                    "",
                ]

        if "clients" not in skip:
            print("Redis clients", file=sys.stderr)
            out += redis_clients(services, args)

        first_pass = http_rows.get("+".join(PASSES[0]), [])
        if peers:
            out += targets(first_pass, inproc_results)
        if first_pass:
            summary_at = next(index for index, line in enumerate(out) if line.startswith("## "))
            out[summary_at:summary_at] = summary(peers, first_pass, inproc_results, race_rows, args.race_writes)
        load = os.getloadavg()[0]
        out += [f"Finished in {time.monotonic() - started:.0f} s; load average at the end {load:.2f}.", ""]
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    text = "\n".join(out)
    print(text)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as file:
        file.write(text)
    print(f"written to {os.path.relpath(args.output)}", file=sys.stderr)
    return 0


def summary(
    peers: list[Peer],
    rows: list[Row],
    inproc_results: dict[str, dict[str, Any]],
    race_rows: list[tuple[Peer, int, int]],
    writes: int,
) -> list[str]:
    """One line per peer: the ratios and added costs that matter, from the uvloop+httptools pass."""
    cells = {(row.peer.key, row.route): row for row in rows}
    kept = {peer.key: count for peer, count, _ in race_rows}
    bare_inproc = inproc_results.get("fastapi", {}).get("routes", {})
    floor = cells.get(("fastapi-depends", "read"))
    lines = [
        "## Summary (uvloop+httptools; ratios against bare FastAPI)",
        "",
        "| peer | read x bare | read +CPU µs | read +CPU µs in-process | write x bare | write +CPU µs "
        "| read p99 x floor | store ops/req read, write | store round trips/req read, write | increments kept |",
        "|---|--:|--:|--:|--:|--:|--:|---|---|--:|",
    ]
    for peer in peers:
        read, write = cells.get((peer.key, "read")), cells.get((peer.key, "write"))
        base_read, base_write = cells.get(("fastapi", "read")), cells.get(("fastapi", "write"))
        if not (read and write and base_read and base_write):
            continue
        mine = inproc_results.get(peer.key, {}).get("routes", {})
        in_process = (
            f"{mine['read']['cpu_us'] - bare_inproc['read']['cpu_us']:.0f}" if "read" in mine and bare_inproc else "-"
        )
        ops = f"{read.ops:.2f}, {write.ops:.2f}" if read.ops or write.ops else "0"
        trips = f"{fmt(read.trips, 2)}, {fmt(write.trips, 2)}" if read.trips or write.trips else "0"
        if peer.store == "postgres":
            trips += " (transactions)"
        p99 = fmt(read.p99_ms / floor.p99_ms, 2) if floor and floor.p99_ms else "-"
        race = f"{kept[peer.key]} / {writes}" if peer.key in kept else "-"
        lines.append(
            f"| {peer.label} | {read.rps / base_read.rps:.2f} | {read.cpu_us - base_read.cpu_us:.0f} | {in_process} "
            f"| {write.rps / base_write.rps:.2f} | {write.cpu_us - base_write.cpu_us:.0f} | {p99} | {ops} | {trips} "
            f"| {race} |"
        )
    return [*lines, ""]


TARGETS_NOTES = """
x bare: req/s over bare FastAPI's on the same route; by CPU: the same figure from the server's CPU µs per
request (bare's over the peer's), which other processes on the machine disturb far less than req/s, and
whether that meets the target. The floor is FastAPI with a no-op `Depends` taking the request: any session
API used through `Depends` pays it. Round trips: see the HTTP notes (PostgreSQL: transactions)."""


def targets(rows: list[Row], inproc_results: dict[str, dict[str, Any]]) -> list[str]:
    """The project's performance targets, checked against this run (uvloop+httptools pass)."""
    cells = {(row.peer.key, row.route): row for row in rows}
    lines = [
        "## Targets (uvloop+httptools pass)",
        "",
        "| figure | measured | target | met | by CPU |",
        "|---|--:|--:|---|--:|",
    ]

    def ratio(peer: str, route: str, by_cpu: bool = False) -> float | None:
        mine, base = cells.get((peer, route)), cells.get(("fastapi", route))
        if mine is None or base is None:
            return None
        if by_cpu:
            return base.cpu_us / mine.cpu_us if mine.cpu_us else None
        return mine.rps / base.rps

    def verdict(value: float | None, limit: float | None, at_least: bool) -> str:
        if value is None or limit is None:
            return "-"
        value, limit = round(value, 2), round(limit, 2)  # as printed
        return "met" if (value >= limit if at_least else value <= limit) else "**not met**"

    def add(figure: str, value: float | None, shown: str, target: str, met: str, by_cpu: str = "") -> None:
        if value is None or value != value:
            lines.append(f"| {figure} | not measured | {target} | - | |")
        else:
            lines.append(f"| {figure} | {shown} | {target} | {met} | {by_cpu} |")

    def ratio_target(figure: str, peer: str, route: str, limit: float) -> None:
        value, cpu = ratio(peer, route), ratio(peer, route, by_cpu=True)
        by_cpu = f"{cpu:.2f}x, {verdict(cpu, limit, True)}" if cpu is not None else ""
        shown = f"{value:.2f}x" if value is not None else ""
        add(figure, value, shown, f"≥ {limit:.2f}x", verdict(value, limit, True), by_cpu)

    floor = cells.get(("fastapi-depends", "read"))

    def over_floor(figure: str, peer: str) -> None:
        mine = cells.get((peer, "read"))
        added = mine.cpu_us - floor.cpu_us if mine and floor else None
        shown = f"{added:+.1f} µs" if added is not None else ""
        add(figure, added, shown, "≤ +12 µs", verdict(added, 12.0, False))

    over_floor("memory read: CPU µs/req added over the floor", "ours-memory")
    value, cookie = ratio("ours-memory", "read"), ratio("starlette-cookie", "read")
    cpu, cookie_cpu = ratio("ours-memory", "read", True), ratio("starlette-cookie", "read", True)
    by_cpu = (
        f"{cpu:.2f}x vs {cookie_cpu:.2f}x, {verdict(cpu, cookie_cpu, True)}"
        if cpu is not None and cookie_cpu is not None
        else ""
    )
    add(
        "memory read x bare, against Starlette's cookie sessions",
        value if cookie is not None else None,
        f"{value:.2f}x" if value is not None else "",
        f"≥ {cookie:.2f}x (cookie)" if cookie is not None else "≥ Starlette cookie's",
        verdict(value, cookie, True),
        by_cpu,
    )
    ratio_target("memory write x bare", "ours-memory", "write", 0.70)
    ratio_target("Redis read x bare", "ours-redis", "read", 0.60)
    ratio_target("Redis write x bare", "ours-redis", "write", 0.50)
    ratio_target("PostgreSQL read x bare", "ours-postgres", "read", 0.45)
    ratio_target("PostgreSQL write x bare", "ours-postgres", "write", 0.35)
    for name, peer, limit in (
        ("memory", "ours-memory", 2.0),
        ("Redis", "ours-redis", 4.0),
        ("PostgreSQL", "ours-postgres", 4.0),
    ):
        mine = cells.get((peer, "read"))
        p99 = mine.p99_ms / floor.p99_ms if mine and floor and floor.p99_ms else None
        add(
            f"{name} read p99 over the floor's read p99",
            p99,
            f"{p99:.2f}x" if p99 is not None else "",
            f"≤ {limit:.0f}x",
            verdict(p99, limit, False),
        )
    if ("compiled-memory", "read") in cells:  # the same figures with the mypyc build (docs/compiled.md)
        over_floor("compiled: memory read: CPU µs/req added over the floor", "compiled-memory")
        ratio_target("compiled: memory write x bare", "compiled-memory", "write", 0.70)
    if ("compiled-redis", "read") in cells:
        ratio_target("compiled: Redis read x bare", "compiled-redis", "read", 0.60)
        ratio_target("compiled: Redis write x bare", "compiled-redis", "write", 0.50)
    for name, peer in (("Redis", "ours-redis"), ("PostgreSQL", "ours-postgres")):
        for route, limit, target in (("read", 1.0, "1"), ("write", 2.0, "≤ 2")):
            mine = cells.get((peer, route))
            trips = mine.trips if mine else None
            unit = " (transactions)" if peer == "ours-postgres" else ""
            add(
                f"{name} store round trips per {route}",
                trips,
                f"{trips:.2f}{unit}" if trips is not None else "",
                target,
                verdict(trips, limit, False),
            )
    return [*lines, TARGETS_NOTES, ""]


if __name__ == "__main__":
    sys.exit(main())
