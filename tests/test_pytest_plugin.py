"""The pytest plugin: declared as a ``pytest11`` entry point, and its fixtures work in a project's own tests."""

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.test_docs import read_blocks

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "fastapi_sessions.pytest_plugin"

FIXTURE_CHECKS = """

def test_fixtures(sessions_store, sessions_clock, sessions_settings, sessions_manager):
    from fastapi_sessions import MemoryStore, SessionSettings

    assert isinstance(sessions_store, MemoryStore) and isinstance(sessions_clock, FakeClock)
    settings = sessions_settings(idle_timeout=60)
    assert isinstance(settings, SessionSettings) and settings.idle_timeout == 60
    assert settings.https_only and settings.store_url == "memory://"  # the environment's SESSION_* are not read
    sessions = sessions_manager(AuthSession)
    assert sessions.store is sessions_store and sessions.clock is sessions_clock


def test_without_the_fixtures():
    pass
"""


def docs_fixture_example() -> str:
    """The test module docs/testing.md shows for the fixtures."""
    blocks = read_blocks(ROOT / "docs" / "testing.md")
    [block] = [block for block in blocks if block.action == "skip" and "sessions_manager" in block.code]
    return block.code


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {PLUGIN: PLUGIN}
    installed = [ep for ep in entry_points(group="pytest11") if ep.value == PLUGIN]
    assert all(ep.name == PLUGIN for ep in installed)


def _plugin_arguments() -> list[str]:
    """``-p`` for the plugin where the package is not installed with its entry point (a bare checkout)."""
    return [] if any(ep.value == PLUGIN for ep in entry_points(group="pytest11")) else ["-p", PLUGIN]


def test_a_project_uses_the_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_STORE_URL", "redis://nowhere.invalid:6379/0")
    monkeypatch.setenv("SESSION_HTTPS_ONLY", "false")
    pytester.makepyfile(test_app=docs_fixture_example() + FIXTURE_CHECKS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest(*_plugin_arguments(), "-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=3)


def test_naming_the_plugin_again_is_harmless(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"pytest_plugins = [{PLUGIN!r}]\n")
    pytester.makepyfile(test_one="def test_clock(sessions_clock):\n    sessions_clock.advance(1)\n")
    result = pytester.runpytest(*_plugin_arguments(), "-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=1)


def test_it_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_clock(sessions_clock):\n    pass\n")
    result = pytester.runpytest(f"-pno:{PLUGIN}", "-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'sessions_clock' not found*"])
