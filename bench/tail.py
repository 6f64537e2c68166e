"""The tail latency of fastapi_sessions on a network store, with and without ``gc.freeze()``, side by side.

Starts bench/apps/ours.py under uvicorn (one worker, uvloop + httptools, pinned to core 1) on the store
named by ``--store`` once as is and once with ``BENCH_GC_FREEZE=1``, and drives each with
``wrk -t1 -c32 --latency`` pinned to core 0, in interleaved rounds. Prints each variant's req/s, p50
and p99 per round and the best round's. Redis is the machine's (127.0.0.1:6379, database 14),
PostgreSQL the ``fastapi_sessions_bench`` database (``bench/run`` creates it).

    .venv/bin/python bench/tail.py                       # Redis, read, 3 rounds of 6 s
    .venv/bin/python bench/tail.py --store postgres --route write --rounds 5

Why: while a request waits for its store, the collector's young collections promote its objects,
and the full collections this sets off walk the whole heap of the app (tens of milliseconds each).
After ``gc.freeze()`` at startup they walk only what was made since.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
URLS = {
    "redis": ("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    "postgres": ("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/fastapi_sessions_bench"),
}
WRK_LUA = """
wrk.method = os.getenv("BENCH_METHOD")
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
if wrk.method == "POST" then wrk.body = "" end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(store: str, freeze: bool) -> tuple[subprocess.Popen[bytes], str, str]:
    """The server, its base URL and its session cookie (from ``/setup``)."""
    port = free_port()
    variable, url = URLS[store]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(BENCH, "apps"), REPO])}
    env.update(
        {"BENCH_STORE": store, variable: os.environ.get(variable, url), "BENCH_GC_FREEZE": "1" if freeze else "0"}
    )
    command = ["taskset", "-c", "1", PYTHON, "-m", "uvicorn", "ours:app", "--port", str(port)]
    command += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env=env, cwd=BENCH)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{base}/setup") as response:
                cookie = response.headers["set-cookie"].split(";", 1)[0]
                return server, base, cookie
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server on {base} did not start")


def wrk(base: str, route: str, cookie: str, seconds: int, lua: str) -> dict[str, float]:
    env = {**os.environ, "BENCH_METHOD": "POST" if route == "write" else "GET", "BENCH_COOKIE": cookie}
    command = ["taskset", "-c", "0", "wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", lua, f"{base}/{route}"]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for name, label in (("p50", "50%"), ("p99", "99%")):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[name] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return figures


def line(figures: dict[str, float]) -> str:
    return f"{figures['rps']:8.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=sorted(URLS), default="redis")
    parser.add_argument("--route", choices=("read", "write"), default="read")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    lua = os.path.join(BENCH, "results", ".tail.lua")
    with open(lua, "w") as file:
        file.write(WRK_LUA)
    servers = {name: start(args.store, freeze) for name, freeze in (("as is", False), ("gc.freeze()", True))}
    best: dict[str, dict[str, float]] = {}
    try:
        for _, base, cookie in servers.values():
            wrk(base, args.route, cookie, 1, lua)  # warm-up
        for round_ in range(1, args.rounds + 1):
            for name, (_, base, cookie) in servers.items():
                figures = wrk(base, args.route, cookie, args.seconds, lua)
                print(f"round {round_} {name:<12} {line(figures)}")
                if name not in best or figures["rps"] > best[name]["rps"]:
                    best[name] = figures
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait()
        os.unlink(lua)
    print(f"\n{args.store} {args.route}, best round of {args.rounds} (highest req/s):")
    for name, figures in best.items():
        print(f"  {name:<12} {line(figures)}")


if __name__ == "__main__":
    sys.exit(main())
