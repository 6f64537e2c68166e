"""Test configuration: every store in ``tests/backends/`` runs the same contract and HTTP suites."""

import pkgutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import Backend

pytest_plugins = [
    "pytester",
    *(
        f"tests.backends.{info.name}"
        for info in pkgutil.iter_modules([str(Path(__file__).parent / "backends")])
        if not info.name.startswith("_")
    ),
]


def backend_names() -> list[str]:
    """Every backend name declared (in ``BACKENDS``) by a module of ``tests/backends/``."""
    return [name for plugin in pytest_plugins if plugin.startswith("tests.") for name in sys.modules[plugin].BACKENDS]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", backend_names())


@pytest.fixture
def backend(backend_name: str, request: pytest.FixtureRequest) -> Backend:
    """The store under test, by name; each name is provided by a module in ``tests/backends/``."""
    value: Any = request.getfixturevalue(f"backend_{backend_name.replace('-', '_')}")
    assert isinstance(value, Backend)
    return value
