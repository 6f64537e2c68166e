"""examples/logging.json, the ``--log-config`` file docs/logging.md describes, gives session lines a time and a level.

Both tests run the configuration in a process of its own: ``logging.config.dictConfig`` closes every
handler of the process it runs in, pytest's own included.
"""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import SECRET

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "logging.json"

# "2026-12-02 00:37:28,251 INFO     fastapi_sessions: session created: 49826724fb5bfcc1"
_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
SESSION_CREATED = re.compile(rf"^{_STAMP} INFO +fastapi_sessions: session created: [0-9a-f]+$", re.M)
SESSION_REJECTED = re.compile(rf"^{_STAMP} WARNING +fastapi_sessions: session rejected: .+$", re.M)
ACCESS = re.compile(rf'^{_STAMP} INFO +uvicorn\.access: 127\.0\.0\.1:\d+ - "POST /cart/3 HTTP/1\.1" 200', re.M)

DEADLINE = 15.0


def _environment() -> dict[str, str]:
    """This process's environment without its ``SESSION_*`` variables, plus what the demo needs over http."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
    env.update(SESSION_SECRET_KEY=SECRET, SESSION_HTTPS_ONLY="false")
    return env


def test_the_page_shows_the_file() -> None:
    """The configuration printed in docs/logging.md is the file's, key for key."""
    page = (ROOT / "docs" / "logging.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```json\n(.*?)^```$", page, flags=re.M | re.S)
    assert [json.loads(block) for block in blocks] == [json.loads(CONFIG.read_text(encoding="utf-8"))]


def test_dict_config_loads_the_file(tmp_path: Path) -> None:
    """`dictConfig` accepts the file, and a library line then carries its time, level and logger."""
    script = (
        "import json, logging, logging.config, sys\n"
        "logging.config.dictConfig(json.load(open(sys.argv[1], encoding='utf-8')))\n"
        "logging.getLogger('fastapi_sessions').info('session created: %s', '49826724fb5bfcc1')\n"
        "logging.getLogger('fastapi_sessions').debug('not at INFO')\n"
        "logging.getLogger('myapp').warning('session rejected: from the root logger')\n"
        "logging.getLogger('myapp').info('not at WARNING')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(CONFIG)], capture_output=True, text=True, cwd=tmp_path, timeout=DEADLINE
    )
    assert result.returncode == 0, result.stderr
    assert SESSION_CREATED.search(result.stderr), result.stderr
    assert "WARNING  myapp: session rejected: from the root logger" in result.stderr
    assert "not at" not in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_uvicorn_with_the_file_logs_session_lines_with_time_and_level(tmp_path: Path) -> None:
    """A real ``uvicorn --log-config examples/logging.json`` serving the demo app, on a socket bound here."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    command = [
        *(sys.executable, "-m", "uvicorn", "examples.app:app"),
        *("--app-dir", str(ROOT), "--fd", str(listener.fileno()), "--log-config", str(CONFIG)),
    ]
    # The working directory is empty, so no .env of the checkout is read; --app-dir imports this checkout.
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_environment(),
        pass_fds=[listener.fileno()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # The socket listens already, so the request waits in its backlog until uvicorn has started.
        assert httpx.post(f"{base}/cart/3", timeout=DEADLINE).json() == {"cart": [3]}
        duplicate = {"Cookie": "session=a; session=b"}
        assert httpx.post(f"{base}/cart/4", headers=duplicate, timeout=DEADLINE).status_code == 200
    finally:
        server.terminate()
        try:
            out, err = server.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
        listener.close()
    assert len(SESSION_CREATED.findall(err)) == 2, err
    assert SESSION_REJECTED.search(err), err
    assert "session rejected: 2 session cookies in one request (cookie tossing?)" in err
    assert re.search(rf"^{_STAMP} INFO +uvicorn\.error: Application startup complete\.$", err, re.M), err
    assert ACCESS.search(out), out
