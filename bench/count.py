"""Instructions per request of a benchmark app, in process: a measure that does not drift with the machine.

Runs the app of bench/apps (called as an ASGI callable, as bench/inproc.py does) under valgrind's
callgrind twice, with ``--few`` and with ``--many`` requests, and prints the difference divided by the
difference in requests, so that start-up and imports cancel out. The same code gives the same count
within about 1%, however busy the machine is (valgrind makes it about 50 times slower, so each count
takes a minute or so). ``apt-get install valgrind`` if it is missing.

    .venv/bin/python bench/count.py ours read                      # fastapi_sessions, memory store
    .venv/bin/python bench/count.py bare_depends read               # the floor
    .venv/bin/python bench/count.py ours write --package bench/.compiled   # the mypyc build

``--package`` is where fastapi_sessions is imported from (default: this repository).
"""

import argparse
import importlib
import os
import re
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


async def serve(module: str, route: str, requests: int) -> None:
    sys.path[:0] = [BENCH, os.path.join(BENCH, "apps")]
    import inproc

    app = importlib.import_module(module).app
    async with inproc.Lifespan(app):
        cookie = await inproc.setup(app, 0)
        method, path = inproc.ROUTES[route]
        for _ in range(requests):
            await inproc.call(app, method, path, b"", cookie)


def instructions(module: str, route: str, requests: int, package: str) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(BENCH, "apps"), package])}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    command += ["--serve", module, route, str(requests)]
    result = subprocess.run(command, env=env, cwd=BENCH, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        module, route, requests = sys.argv[2:5]
        import uvloop

        uvloop.run(serve(module, route, int(requests)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module")
    parser.add_argument("route", choices=("bare", "read", "write"))
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=700)
    parser.add_argument("--package", default=REPO)
    args = parser.parse_args()
    package = os.path.abspath(args.package)
    few = instructions(args.module, args.route, args.few, package)
    many = instructions(args.module, args.route, args.many, package)
    print(f"{args.module} {args.route}: {(many - few) / (args.many - args.few):,.0f} instructions per request")


if __name__ == "__main__":
    main()
