"""The public API: a flat, sorted ``__all__``, and no optional driver loaded by ``import fastapi_sessions``."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import fastapi_sessions

ROOT = Path(__file__).resolve().parent.parent

# Importing these is the job of the store (or encryption) module that needs them, never of the package.
OPTIONAL_DRIVERS = ["aiosqlite", "asyncpg", "cryptography", "motor", "pymongo", "redis"]


def test_all_is_sorted() -> None:
    assert fastapi_sessions.__all__ == sorted(fastapi_sessions.__all__)


def test_all_equals_the_public_names() -> None:
    public = {
        name
        for name, value in vars(fastapi_sessions).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert fastapi_sessions.__all__ == sorted(public | {"__version__"})


def test_every_exported_name_is_defined() -> None:
    for name in fastapi_sessions.__all__:
        assert getattr(fastapi_sessions, name) is not None, name


def test_version_is_a_string() -> None:
    assert isinstance(fastapi_sessions.__version__, str)
    assert fastapi_sessions.__version__


def _modules_loaded_by(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {name: value for name, value in os.environ.items() if not name.startswith("SESSION_")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT, env=env
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return [name for name in loaded if name.split(".")[0] in OPTIONAL_DRIVERS]


def test_import_loads_no_optional_driver() -> None:
    assert _modules_loaded_by("import fastapi_sessions") == []


def test_memory_manager_loads_no_optional_driver() -> None:
    code = (
        "from fastapi_sessions import AuthSession, SessionManager, SessionSettings\n"
        "settings = SessionSettings(secret_key='an-import-test-secret-key-0123456789abcdef', _env_file=None)\n"
        "SessionManager(AuthSession, settings=settings)"
    )
    assert _modules_loaded_by(code) == []
