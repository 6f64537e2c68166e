"""The compiled build (docs/compiled.md): ``fastapi_sessions.compiled`` tells the truth, and the pure-Python package
is always there to fall back on.

The suite runs twice in CI: against the source tree (``compiled`` is False) and, by ``scripts/test-compiled``,
against an installed wheel built with mypyc (``compiled`` is True). These tests hold in both.
"""

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import fastapi_sessions
from tests.support import SECRET

ROOT = Path(__file__).resolve().parent.parent
HOOK = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"]["targets"][
    "wheel"
]["hooks"]["mypyc"]
# "/fastapi_sessions/stores/_records.py" -> "fastapi_sessions.stores._records"
COMPILED_MODULES = [pattern.strip("/").removesuffix(".py").replace("/", ".") for pattern in HOOK["include"]]


def _is_extension(module_name: str) -> bool:
    path = importlib.import_module(module_name).__file__ or ""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_the_hook_is_off_by_default() -> None:
    """`pip install -e '.[dev]'` builds pure Python; HATCH_BUILD_HOOK_ENABLE_MYPYC=1 turns the hook on."""
    assert HOOK["enable-by-default"] is False
    assert COMPILED_MODULES
    assert all(pattern.startswith("/fastapi_sessions/") and pattern.endswith(".py") for pattern in HOOK["include"])


def test_compiled_is_all_or_nothing() -> None:
    """Every module the hook compiles is an extension module when `compiled` says so, and none is otherwise."""
    assert isinstance(fastapi_sessions.compiled, bool)
    assert {name: _is_extension(name) for name in COMPILED_MODULES} == dict.fromkeys(
        COMPILED_MODULES, fastapi_sessions.compiled
    )


def test_the_rest_stays_python() -> None:
    """Modules FastAPI inspects, the Pydantic models and the settings are never compiled."""
    for name in ["fastapi_sessions.manager", "fastapi_sessions.guards", "fastapi_sessions.model"]:
        assert not _is_extension(name), name
    assert not _is_extension("fastapi_sessions.settings")


def test_the_sources_ship_beside_the_extensions() -> None:
    for name in COMPILED_MODULES:
        path = Path(importlib.import_module(name).__file__ or "")
        assert path.with_name(path.name.split(".")[0] + ".py").is_file(), name


def test_the_pure_package_runs_on_its_own(tmp_path: Path) -> None:
    """The package's .py files alone, as on a platform with no compiled wheel, import and serve a session."""
    package = Path(fastapi_sessions.__file__).parent
    shutil.copytree(package, tmp_path / "fastapi_sessions", ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.pyc"))
    script = (
        "import fastapi_sessions\n"
        "from fastapi_sessions import SessionManager, SessionModel, SessionSettings\n"
        "from fastapi import Depends, FastAPI\n"
        "from fastapi.testclient import TestClient\n"
        "class Visits(SessionModel):\n"
        "    count: int = 0\n"
        f"sessions = SessionManager(Visits, settings=SessionSettings(secret_key={SECRET!r}, https_only=False))\n"
        "app = FastAPI()\n"
        "sessions.install(app)\n"
        "@app.post('/visit')\n"
        "async def visit(session: Visits = Depends(sessions)) -> int:\n"
        "    session.count += 1\n"
        "    return session.count\n"
        "with TestClient(app) as client:\n"
        "    counts = [client.post('/visit').json() for _ in range(2)]\n"
        "print(fastapi_sessions.compiled, fastapi_sessions.__file__, counts)\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(tmp_path / "fastapi_sessions" / "__init__.py"), "[1,", "2]"]
