"""Soak fastapi_sessions: real uvicorn servers on every store, 32 clients, for a minute each, then count.

Usually started through ``bench/soak`` (which makes sure the project's venv exists). See
docs/performance.md, "Soak test", for what runs and what the figures mean.

    bench/soak                          # every store, 60 s each (about 6 minutes)
    bench/soak --seconds 5              # a quick look
    bench/soak --stores memory,redis    # some stores only
    bench/soak --strict-updates         # with SESSION_STRICT_UPDATES=true (409s are expected then)
"""

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import os
import platform
import random
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator

import httpx
from run import APPS, REPO, free_port, wait_port

STORES = ("memory", "sqlite", "redis", "postgres", "mongodb")
WORKERS = {"memory": 1, "sqlite": 2, "redis": 2, "postgres": 2, "mongodb": 1}
REDIS_BASE = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_BASE = os.environ.get("SOAK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS = 32
SHARED_GROUPS, SHARED_SIZE = 3, 4  # 12 clients on 3 sessions
SOLO = 12  # one session each
CHURN = CLIENTS - SHARED_GROUPS * SHARED_SIZE - SOLO  # log in on two devices, revoke, log out, start over
MAX_REQUESTS_PER_CLIENT = 100_000  # a bound besides the clock
REQUEST_TIMEOUT = 15.0
MAX_DATA_BYTES = 4 * 1024 * 1024  # the lists grow for the whole run
TARGET_RSS_GROWTH = 10.0  # percent


# Measuring.


@dataclasses.dataclass
class Traffic:
    """Every request of one store's run: statuses, transport errors and latencies."""

    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    failures: Counter[str] = dataclasses.field(default_factory=Counter)
    latencies: list[float] = dataclasses.field(default_factory=list)
    actions: Counter[str] = dataclasses.field(default_factory=Counter)
    missed: Counter[str] = dataclasses.field(default_factory=Counter)  # a logout or revocation that did not hold

    async def call(self, client: httpx.AsyncClient, method: str, path: str, /, **params: str) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, path, params=params or None)
        except httpx.HTTPError as exc:
            self.failures[type(exc).__name__] += 1
            return None
        self.latencies.append(time.perf_counter() - started)
        self.statuses[response.status_code] += 1
        return response

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())

    def errors(self, allowed: set[int]) -> dict[str, int]:
        """Every outcome that counts as an error: non-2xx statuses not in ``allowed``, and transport errors."""
        errors = {
            str(status): n for status, n in sorted(self.statuses.items()) if status >= 300 and status not in allowed
        }
        errors.update(self.failures)
        return errors

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclasses.dataclass
class Writer:
    """One client's own account of its acknowledged (2xx) writes to a session."""

    name: str
    tokens: list[str] = dataclasses.field(default_factory=list)

    async def write(self, traffic: Traffic, client: httpx.AsyncClient, serial: int) -> None:
        token = f"{self.name}.{serial}"
        response = await traffic.call(client, "POST", "/write", client=self.name, token=token)
        if response is not None and response.is_success:
            self.tokens.append(token)


@dataclasses.dataclass
class Lost:
    """Acknowledged writes missing from the sessions read back at the end, per kind of write."""

    sessions: int = 0
    acknowledged: int = 0
    items: int = 0  # list appends
    counts: int = 0  # increments of the client's own dict key
    hits: int = 0  # increments of the top-level counter

    def add(self, state: dict[str, object], writers: list[Writer]) -> None:
        items = set(state.get("items") or [])  # type: ignore[call-overload]
        counts: dict[str, int] = state.get("counts") or {}  # type: ignore[assignment]
        acknowledged = sum(len(w.tokens) for w in writers)
        self.sessions += 1
        self.acknowledged += acknowledged
        self.items += sum(token not in items for w in writers for token in w.tokens)
        self.counts += sum(max(0, len(w.tokens) - counts.get(w.name, 0)) for w in writers)
        self.hits += max(0, acknowledged - int(state.get("hits") or 0))  # type: ignore[call-overload]

    def line(self) -> str:
        def part(lost: int) -> str:
            share = f" ({100 * lost / self.acknowledged:.1f} %)" if lost and self.acknowledged else ""
            return f"{lost}{share}"

        return (
            f"of {self.acknowledged} acknowledged writes on {self.sessions} sessions, lost: list appends "
            f"{part(self.items)}, dict increments {part(self.counts)}, counter increments {part(self.hits)}"
        )

    def counts_line(self) -> str:
        """Lost list appends / dict increments / counter increments, of the acknowledged writes."""
        return f"{self.items} / {self.counts} / {self.hits} of {self.acknowledged}"

    @property
    def total(self) -> int:
        return self.items + self.counts + self.hits


# Clients.


async def one_per_session(traffic: Traffic, client: httpx.AsyncClient, writer: Writer, end: float, seed: int) -> None:
    """Reads and writes on a session of its own, with logins and regenerations (which keep the data)."""
    rng = random.Random(seed)
    for serial in range(1, MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= end:
            return
        roll = rng.random()
        if roll < 0.55:
            await writer.write(traffic, client, serial)
        elif roll < 0.9:
            await traffic.call(client, "GET", "/read")
        elif roll < 0.95:
            traffic.actions["regeneration"] += 1
            await traffic.call(client, "POST", "/regenerate")
        else:
            traffic.actions["login"] += 1
            await traffic.call(client, "POST", "/login", user=writer.name)


async def sharing(traffic: Traffic, client: httpx.AsyncClient, writer: Writer, end: float, seed: int) -> None:
    """Reads and writes on a session other clients write to at the same time."""
    rng = random.Random(seed)
    for serial in range(1, MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= end:
            return
        if rng.random() < 0.6:
            await writer.write(traffic, client, serial)
        else:
            await traffic.call(client, "GET", "/read")


async def churn(traffic: Traffic, devices: tuple[httpx.AsyncClient, httpx.AsyncClient], name: str, end: float) -> None:
    """A user who logs in on two devices, signs the other one out, logs out, and comes back as a new visitor."""
    first, second = devices
    for visit in range(MAX_REQUESTS_PER_CLIENT // 12):
        if time.monotonic() >= end:
            return
        user = f"{name}-{visit}"
        for device in devices:
            device.cookies.clear()
            await traffic.call(device, "POST", "/write", client=name, token=f"{user}.0")
            traffic.actions["login"] += 1
            await traffic.call(device, "POST", "/login", user=user)
            await traffic.call(device, "POST", "/write", client=name, token=f"{user}.1")
            await traffic.call(device, "GET", "/read")
        traffic.actions["revocation"] += 1
        revoked = await traffic.call(first, "POST", "/revoke-others")
        after = await traffic.call(second, "GET", "/read")
        if revoked is not None and after is not None and revoked.is_success and after.is_success:
            if after.json()["user"] is not None:
                traffic.missed["revocation"] += 1
        traffic.actions["logout"] += 1
        out = await traffic.call(first, "POST", "/logout")
        after = await traffic.call(first, "GET", "/read")
        if out is not None and after is not None and out.is_success and after.is_success:
            if after.json()["user"] is not None:
                traffic.missed["logout"] += 1


async def soak(base_url: str, seconds: float, on_ready: "asyncio.Event") -> tuple[Traffic, Lost, Lost]:
    """Run every client against ``base_url`` for ``seconds``; returns the traffic and the lost updates."""
    traffic = Traffic()
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    async with contextlib.AsyncExitStack() as stack:

        async def browser() -> httpx.AsyncClient:
            return await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=timeout))

        # Each session is created by a first write, before the clock starts.
        groups: list[list[tuple[httpx.AsyncClient, Writer]]] = []
        for g in range(SHARED_GROUPS):
            group = [(await browser(), Writer(f"shared{g}-{c}")) for c in range(SHARED_SIZE)]
            await group[0][1].write(traffic, group[0][0], 0)
            for client, _ in group[1:]:
                client.cookies = httpx.Cookies(group[0][0].cookies)
            groups.append(group)
        solos = [(await browser(), Writer(f"solo{s}")) for s in range(SOLO)]
        for client, writer in solos:
            await writer.write(traffic, client, 0)
        churners = [((await browser(), await browser()), f"churn{c}") for c in range(CHURN)]
        on_ready.set()
        await asyncio.sleep(0)

        end = time.monotonic() + seconds
        tasks = [
            sharing(traffic, client, writer, end, i)
            for i, (client, writer) in enumerate(member for group in groups for member in group)
        ]
        tasks += [one_per_session(traffic, client, writer, end, 100 + i) for i, (client, writer) in enumerate(solos)]
        tasks += [churn(traffic, devices, name, end) for devices, name in churners]
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 4 * REQUEST_TIMEOUT)

        shared, solo = Lost(), Lost()
        for group in groups:
            shared.add(await read_back(group[0][0]), [writer for _, writer in group])
        for client, writer in solos:
            solo.add(await read_back(client), [writer])
    return traffic, shared, solo


async def read_back(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/state")
    response.raise_for_status()
    state: dict[str, object] = response.json()
    return state


# Stores and servers.


@contextlib.asynccontextmanager
async def store_url(store: str, workdir: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The SESSION_STORE_URL (and any other environment) for ``store``; removes the store's data after."""
    run_id = secrets.token_hex(4)
    if store in ("memory", "mongodb"):
        yield "memory://?max_entries=1000000", {"SOAK_STORE": store}
    elif store == "sqlite":
        yield f"sqlite:///{os.path.join(workdir, 'soak.db')}", {}
    elif store == "redis":
        import redis.asyncio

        prefix = f"fastapi_sessions_soak_{run_id}:"
        try:
            yield f"{REDIS_BASE}?prefix={prefix}", {}
        finally:

            async def drop_keys() -> None:
                client = redis.asyncio.Redis.from_url(REDIS_BASE)
                try:
                    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
                    for start in range(0, len(keys), 1000):
                        await client.delete(*keys[start : start + 1000])
                finally:
                    await client.aclose()

            await clean_up(drop_keys(), f"Redis keys {prefix}*")
    elif store == "postgres":
        import asyncpg

        table = f"soak_{run_id}"
        try:
            yield f"{POSTGRES_BASE}?table={table}", {}
        finally:

            async def drop_table() -> None:
                connection = await asyncpg.connect(POSTGRES_BASE)
                try:
                    await connection.execute(f"DROP TABLE IF EXISTS {table}")
                finally:
                    await connection.close()

            await clean_up(drop_table(), f"PostgreSQL table {table}")
    else:
        raise SystemExit(f"unknown store {store!r}: choose from {', '.join(STORES)}")


async def clean_up(removal: Coroutine[None, None, None], what: str) -> None:
    """Remove a run's data; a failure is reported, not raised, so it never hides why the run stopped."""
    try:
        await removal
    except Exception as exc:
        print(f"warning: could not remove the {what}: {type(exc).__name__}: {exc}", file=sys.stderr)


@contextlib.contextmanager
def server(url: str, env: dict[str, str], workers: int, log_path: str, strict: bool) -> Iterator[tuple[int, int]]:
    """uvicorn serving soak_app with ``workers`` workers on a free loopback port: yields (port, master pid)."""
    port = free_port()
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    process_env.update(env)
    process_env.update(
        PYTHONPATH=os.pathsep.join([APPS, REPO]),
        SESSION_SECRET_KEY=secrets.token_urlsafe(48),
        SESSION_HTTPS_ONLY="false",
        SESSION_STORE_URL=url,
        SESSION_MAX_DATA_BYTES=str(MAX_DATA_BYTES),
        SESSION_STRICT_UPDATES="true" if strict else "false",
    )
    cmd = [sys.executable, "-m", "uvicorn", "soak_app:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=APPS, env=process_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_port(port, proc)
        yield port, proc.pid
    finally:
        stop_group(proc)


def stop_group(proc: "subprocess.Popen[bytes]") -> None:
    """Stop the server and its workers: SIGTERM to its process group, SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def workers_of(master: int, expected: int, timeout: float = 20.0) -> list[int]:
    """The uvicorn worker processes (the master's children, or the master itself when it serves alone)."""
    if expected == 1:
        return [master]
    deadline = time.monotonic() + timeout
    found: list[int] = []
    while time.monotonic() < deadline:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    command = cmdline.read()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master and b"resource_tracker" not in command:
                found.append(int(entry))
        if len(found) >= expected:
            return sorted(found)
        time.sleep(0.2)
    raise RuntimeError(f"uvicorn started {len(found)} of {expected} workers within {timeout}s")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# One store, and the report.


@dataclasses.dataclass
class Result:
    store: str
    workers: int
    seconds: float
    traffic: Traffic
    shared: Lost
    solo: Lost
    rss: list[tuple[int, int, int]]  # pid, KiB at start, KiB at end
    allowed: set[int]

    def growth(self) -> float:
        return max((100 * (end - start) / start for _, start, end in self.rss if start), default=float("nan"))


async def run_store(store: str, seconds: float, strict: bool, workdir: str) -> Result:
    log_path = os.path.join(workdir, f"{store}.log")
    async with store_url(store, workdir) as (url, env):
        with server(url, env, WORKERS[store], log_path, strict) as (port, master):
            pids = workers_of(master, WORKERS[store])
            ready = asyncio.Event()
            start_rss: dict[int, int] = {}

            async def sample_start() -> None:
                await ready.wait()
                start_rss.update({pid: rss_kib(pid) for pid in pids})

            sampler = asyncio.create_task(sample_start())
            try:
                traffic, shared, solo = await soak(f"http://127.0.0.1:{port}", seconds, ready)
            except Exception:
                with open(log_path, errors="replace") as log:
                    sys.stderr.write(f"{store}: server log tail:\n{''.join(log.readlines()[-20:])}")
                raise
            await sampler
            rss = [(pid, start_rss[pid], rss_kib(pid)) for pid in pids]
    return Result(store, WORKERS[store], seconds, traffic, shared, solo, rss, {409} if strict else set())


def report(result: Result) -> list[str]:
    t = result.traffic
    errors = t.errors(result.allowed)
    error_count = sum(errors.values())
    conflicts = t.statuses.get(409, 0) if 409 in result.allowed else 0
    plural = "s" if result.workers > 1 else ""
    lines = [f"### {result.store} ({result.workers} worker{plural})", ""]
    lines.append(
        f"- requests: {t.requests} in {result.seconds:g} s ({t.requests / result.seconds:.0f} req/s); "
        f"p50 {t.percentile(0.50):.1f} ms, p99 {t.percentile(0.99):.1f} ms"
    )
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(t.statuses.items()))
    shown = ", ".join(f"{what}: {n}" for what, n in errors.items()) or "none"
    lines.append(f"- statuses: {statuses}; errors: {shown}{mark(error_count == 0)} (target: 0 besides documented 409s)")
    if 409 in result.allowed:
        lines.append(f"- documented 409s (strict updates): {conflicts}")
    lines.append(f"- one client per session: {result.solo.line()}{mark(result.solo.total == 0)} (target: 0)")
    note = "concurrent appends, dict keys and Counter increments merge"
    lines.append(
        f"- shared sessions ({SHARED_SIZE} clients each): {result.shared.line()}"
        f"{mark(result.shared.total == 0)} (target: 0; {note})"
    )
    actions = ", ".join(f"{what}s: {n}" for what, n in sorted(t.actions.items()))
    missed = ", ".join(f"{what}s that did not hold: {n}" for what, n in sorted(t.missed.items())) or "none failed"
    lines.append(f"- {actions}; checked after each revocation and logout: {missed}{mark(not t.missed)}")
    rss = ", ".join(
        f"pid {pid} {start / 1024:.1f} → {end / 1024:.1f} MiB ({100 * (end - start) / start:+.1f} %)"
        for pid, start, end in result.rss
    )
    lines.append(
        f"- worker RSS: {rss}{mark(result.growth() < TARGET_RSS_GROWTH)} (target: under {TARGET_RSS_GROWTH:g} %)"
    )
    return [*lines, ""]


def summary(results: list[Result]) -> list[str]:
    lines = [
        "| store | workers | requests | req/s | errors | lost (list / dict / counter), one client per session "
        "| lost (list / dict / counter), shared sessions "
        "| p50 ms | p99 ms | RSS growth |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r.traffic
        lines.append(
            f"| {r.store} | {r.workers} | {t.requests} | {t.requests / r.seconds:.0f} "
            f"| {sum(t.errors(r.allowed).values())} | {r.solo.counts_line()} | {r.shared.counts_line()} "
            f"| {t.percentile(0.5):.1f} | {t.percentile(0.99):.1f} "
            f"| {r.growth():+.1f} % |"
        )
    return lines


def mark(ok: bool) -> str:
    return " ✓" if ok else " ✗"


def header(args: argparse.Namespace, stores: list[str]) -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-c", "import fastapi_sessions as f; print(f.__version__, f.__file__)"],
        env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
    )
    command = shlex.join(["bench/soak", *sys.argv[1:]])
    return [
        f"# Soak: {', '.join(stores)}, {args.seconds:g} s each",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {platform.python_version()}",
        f"- fastapi_sessions {probe.stdout.strip() or probe.stderr.strip()[-200:]}",
        f"- clients: {CLIENTS} (httpx, a cookie jar each): {SHARED_GROUPS} sessions shared by {SHARED_SIZE} clients, "
        f"{SOLO} with a session each, {CHURN} logging in on two devices, revoking, logging out and starting over",
        f"- strict updates: {'on (409s are documented, not errors)' if args.strict_updates else 'off'}",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="load per store (default: 60)")
    parser.add_argument("--stores", default=",".join(STORES), help=f"comma-separated, from {','.join(STORES)}")
    parser.add_argument("--strict-updates", action="store_true", help="run with SESSION_STRICT_UPDATES=true")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORES]
    if unknown or not stores or args.seconds <= 0:
        parser.error(f"--stores takes names from {', '.join(STORES)}; --seconds a positive number")
    lines = header(args, stores)
    print("\n".join(lines), flush=True)
    results: list[Result] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fastapi-sessions-soak-") as workdir:
        for store in stores:
            try:
                result = asyncio.run(run_store(store, args.seconds, args.strict_updates, workdir))
            except Exception as exc:  # one store down must not hide the others' figures
                failed.append(store)
                print(f"### {store}: not measured ({type(exc).__name__}: {exc})\n", flush=True)
                continue
            results.append(result)
            print("\n".join(report(result)), flush=True)
    print("\n".join(summary(results)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
