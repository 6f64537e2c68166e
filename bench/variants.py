"""The cost of lifecycle listeners and OpenTelemetry, side by side in one run, in process.

Runs bench/inproc.py on bench/apps/ours.py (memory store) for each variant, interleaved, several
rounds, and prints each variant's best CPU µs per request and its ratio to ``off``:

    before    the package as of a git revision (``--before``, default the branch's merge base with main)
    off       this tree, no listener, no OpenTelemetry SDK (the API installed, as FastAPI brings it)
    listener  this tree, one lifecycle listener that does nothing
    otel      this tree, OpenTelemetry SDK providers passed to the manager

    python bench/variants.py [--before REV] [--rounds 3] [--budget 1.0] [--routes bare,read,write]
    python bench/variants.py --store redis --variants before,off      # another store, fewer variants

``--store`` is memory, redis or postgres (the servers of ``bench/apps/common.py``: Redis database 15
on 127.0.0.1:6379, the ``fastapi_sessions_bench`` database on 127.0.0.1:5432, which bench/run creates).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)


def export(revision: str, into: str) -> None:
    """The package as of ``revision``, unpacked into ``into`` (the work tree is left alone)."""
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", revision, "fastapi_sessions"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def run(path: str, env: dict[str, str], routes: str, budget: float, store: str) -> dict[str, float]:
    command = [sys.executable, os.path.join(BENCH, "inproc.py"), "ours", "--routes", routes, "--budget", str(budget)]
    environment = {**os.environ, "PYTHONPATH": path, "BENCH_STORE": store, **env}
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=environment, cwd=BENCH)
    routes_out = json.loads(result.stdout.splitlines()[-1])["routes"]
    return {route: values["cpu_us"] for route, values in routes_out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--routes", default="bare,read,write")
    parser.add_argument("--store", default="memory", choices=("memory", "redis", "postgres"))
    parser.add_argument("--variants", default="before,off,listener,otel")
    args = parser.parse_args()
    before = (
        args.before
        or subprocess.run(
            ["git", "-C", REPO, "merge-base", "HEAD", "main"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    with tempfile.TemporaryDirectory() as baseline:
        export(before, baseline)
        variants = {
            "before": (baseline, {}),
            "off": (REPO, {}),
            "listener": (REPO, {"BENCH_LISTENER": "1"}),
            "otel": (REPO, {"BENCH_OTEL": "1"}),
        }
        wanted = args.variants.split(",")
        unknown = sorted(set(wanted) - set(variants))
        if unknown or "off" not in wanted:
            parser.error(f"--variants: choose from {', '.join(variants)}, including off (the ratios' base)")
        variants = {name: variants[name] for name in wanted}
        best: dict[str, dict[str, float]] = {name: {} for name in variants}
        for _ in range(args.rounds):
            for name, (path, env) in variants.items():
                for route, cpu in run(path, env, args.routes, args.budget, args.store).items():
                    best[name][route] = min(cpu, best[name].get(route, cpu))
    routes = args.routes.split(",")
    print(f"{args.store} store: CPU µs per request, best of {args.rounds} interleaved rounds (before = {before[:10]})")
    print(f"{'variant':<10}" + "".join(f"{route:>18}" for route in routes))
    for name, values in best.items():
        cells = "".join(f"{values[r]:>9.1f} ({values[r] / best['off'][r]:.3f})" for r in routes)
        print(f"{name:<10}{cells}")


if __name__ == "__main__":
    main()
