"""The parts of bench/run.py that read other programs' output: MONITOR lines, INFO replies, /proc."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN_PY = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("line", "counted"),
    [
        (b'+1796183107.965330 [1 127.0.0.1:38688] "HGETALL" "fastapi_sessions:{fc97}"', True),
        (b'+1796183107.965682 [1 127.0.0.1:38688] "EVALSHA" "ced189f6" "1" "fastapi_sessions:{fc97}"', True),
        (b'+1796183107.965710 [1 lua] "HMGET" "fastapi_sessions:{fc97}" ":v"', False),
        (b'+1796183107.964589 [0 127.0.0.1:38744] "INFO" "stats"', False),
        (b'+1796183107.965330 [11 127.0.0.1:38688] "GET" "x"', False),
        (b"", False),
    ],
)
def test_monitor_lines_count_the_commands_clients_sent_to_the_peers_database(
    run: ModuleType, line: bytes, counted: bool
) -> None:
    assert run._monitor_client(line, 1) is counted


def test_bulk_length_covers_the_whole_info_reply(run: ModuleType) -> None:
    body = b"# Stats\r\ntotal_reads_processed:42\r\n"
    reply = b"$%d\r\n%s\r\n" % (len(body), body)
    assert run._bulk_length(reply[:10]) == len(reply)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_tree_finds_the_workers_under_a_supervisor(run: ModuleType) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
    script += "print('ready', flush=True); time.sleep(30)"
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert supervisor.stdout is not None
        supervisor.stdout.readline()
        tree = run.process_tree(supervisor.pid)
        assert tree[0] == supervisor.pid
        assert len(tree) == 2
        assert all(run.process_cpu(pid) >= 0 for pid in tree)
    finally:
        for pid in run.process_tree(supervisor.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        supervisor.kill()
        supervisor.wait()
        supervisor.stdout.close()  # type: ignore[union-attr]
