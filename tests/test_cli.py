"""The ``fastapi-sessions`` command, run as users run it: a subprocess with a clean environment, and ``main(argv)``.

Sessions are made by the library (an app logging users in over HTTP, or the store itself), then
listed, counted, cleaned up and revoked with the command, against the real servers: SQLite (a file of
the test's own), Redis (a key prefix of its own) and PostgreSQL (a table of its own), through the
URLs of ``tests/backends/``. The MongoDB fake lives in one process, so it runs through ``main`` only.
"""

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fastapi_sessions import AuthSession, MemoryStore, SessionManager, SessionSettings, SessionStore
from fastapi_sessions.cli import _commands, main
from fastapi_sessions.settings import MIN_SECRET_LENGTH
from fastapi_sessions.stores.base import missing_driver
from tests.support import SECRET, Backend, FakeClock, client, free_port, login_app

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", "Mozilla/5.0 (iPhone) Safari/605.1", "curl/8.5.0")
PASSWORD = "pa55-w0rd-not-to-print"


@dataclass
class Result:
    """What a run of the command gave: its exit status and what it printed."""

    status: int
    out: str
    err: str


def run_process(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """``python -m fastapi_sessions ARGS`` in a clean environment: only ``env``, the path and this checkout."""
    clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONUTF8": "1", **env}
    done = subprocess.run(
        [sys.executable, "-m", "fastapi_sessions", *args],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of ``main`` runs: no ``SESSION_*`` variable but those a test sets, no ``.env``."""
    for name in list(os.environ):
        if name.startswith("SESSION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {}
    yield env


def run_main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str
) -> Result:
    """``main(args)`` in this process, with ``env`` as the only ``SESSION_*`` variables."""
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        status = main(list(args))
    captured = capsys.readouterr()
    return Result(status, captured.out, captured.err)


# Stores with a server or a file: the command runs in another process than the app that made the sessions.

SHARED_STORES = ["sqlite", "redis", "postgres"]


@pytest.fixture(params=SHARED_STORES)
def shared(request: pytest.FixtureRequest) -> Backend:
    backend: Any = request.getfixturevalue(f"backend_{request.param}")
    assert isinstance(backend, Backend) and backend.url is not None
    return backend


def env_of(backend: Backend, **more: str) -> dict[str, str]:
    assert backend.url is not None
    return {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": backend.url, **more}


def app_settings(url: str, **overrides: Any) -> SessionSettings:
    return SessionSettings(secret_key=SECRET, store_url=url, _env_file=None, **overrides)


@dataclass
class Devices:
    """Sessions an app made by logging users in: each browser's cookie, and the time of each login."""

    manager: SessionManager[AuthSession]
    cookies: dict[str, str]
    """The cookie of each device (its user agent) of alice."""
    logins: list[datetime]


def log_in_devices(settings: SessionSettings, store: SessionStore | None = None) -> Devices:
    """Log alice in from three devices and bob from one, 10 s apart by the app's clock, over HTTP."""
    clock = FakeClock(start=time.time() - 60)
    manager = SessionManager(AuthSession, settings=settings, store=store, clock=clock)
    cookies = {}
    logins = []
    with client(login_app(manager)) as browser:
        for user, agent in [*(("alice", agent) for agent in AGENTS), ("bob", "bob-browser/1.0")]:
            browser.cookies.clear()
            logins.append(datetime.fromtimestamp(clock.now, UTC))
            assert browser.post(f"/login/{user}", headers={"User-Agent": agent}).status_code == 200
            if user == "alice":
                cookies[agent] = browser.cookies[manager.cookie_name]
            clock.advance(10)
    return Devices(manager, cookies, logins[:3])


def logged_in(devices: Devices, agent: str) -> bool:
    """Whether the app still lets alice's device ``agent`` in."""
    manager = devices.manager
    with client(login_app(manager)) as browser:
        browser.cookies.set(manager.cookie_name, devices.cookies[agent])
        status = browser.get("/me").status_code
    assert status in (200, 401)
    return status == 200


def test_list_count_and_revoke_sessions_an_app_made(
    shared: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    assert shared.url is not None
    devices = log_in_devices(app_settings(shared.url))
    env = env_of(shared)

    listed = run_process("sessions", "alice", "--json", env=env, cwd=tmp_path)
    assert listed.status == 0, listed.err
    sessions = json.loads(listed.out)
    assert [item["user_agent"] for item in sessions] == list(AGENTS)
    assert [datetime.fromisoformat(item["created_at"]) for item in sessions] == devices.logins
    assert [item["last_seen"] for item in sessions] == [item["created_at"] for item in sessions]
    assert {item["ip"] for item in sessions} == {"testclient"}
    handles = [item["handle"] for item in sessions]

    table = run_main(capsys, monkeypatch, env, "sessions", "alice")
    assert table.status == 0
    header, *rows = table.out.splitlines()
    assert header.split() == ["HANDLE", "CREATED", "(UTC)", "LAST", "SEEN", "(UTC)", "IP", "USER", "AGENT"]
    assert [row.split()[0] for row in rows] == handles
    assert all(row.endswith(agent) for row, agent in zip(rows, AGENTS, strict=True))
    assert rows[0].split()[1:3] == devices.logins[0].strftime("%Y-%m-%d %H:%M:%S").split()

    stats = run_main(capsys, monkeypatch, env, "stats", "--json")
    assert stats.status == 0 and json.loads(stats.out)["live_sessions"] == 4

    one = run_main(capsys, monkeypatch, env, "revoke", "alice", handles[0])
    assert (one.status, one.out) == (0, '1 session of user "alice" revoked\n')
    again = run_main(capsys, monkeypatch, env, "revoke", "alice", handles[0])
    assert again.status == 1 and "has no live session" in again.err and "fastapi-sessions sessions USER" in again.err
    assert not logged_in(devices, AGENTS[0])
    assert logged_in(devices, AGENTS[1])

    rest = run_process("revoke", "alice", "--all", "--keep", handles[2], env=env, cwd=tmp_path)
    assert (rest.status, rest.out) == (0, '1 session of user "alice" revoked\n'), rest.err
    assert not logged_in(devices, AGENTS[1])
    assert logged_in(devices, AGENTS[2])
    everything = run_main(capsys, monkeypatch, env, "revoke", "alice", "--all")
    assert (everything.status, everything.out) == (0, '1 session of user "alice" revoked\n')
    assert not logged_in(devices, AGENTS[2])

    none = run_main(capsys, monkeypatch, env, "sessions", "alice")
    assert (none.status, none.out) == (0, 'no live sessions of user "alice"\n')
    assert json.loads(run_main(capsys, monkeypatch, env, "sessions", "alice", "--json").out) == []
    assert run_main(capsys, monkeypatch, env, "stats").out.startswith("live sessions: 1 (")  # bob's


def test_check_opens_the_store_and_reads(shared: Backend, tmp_path: Path) -> None:
    result = run_process("check", env=env_of(shared), cwd=tmp_path)
    assert result.status == 0, result.err
    assert result.out.startswith("settings: valid\n")
    assert "store: reachable (" in result.out
    assert SECRET not in result.out + result.err


def test_cleanup_removes_expired_records_and_prints_how_many(
    shared: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    assert shared.age is not None
    age = shared.age

    async def make_records() -> None:
        async with shared.make_store() as store:
            await store.create("old", {"_created": time.time()}, ttl=60, user_id=None)
            await store.create("new", {"_created": time.time()}, ttl=60, user_id="u1")
            await age(store, "old", 120)

    asyncio.run(make_records())
    env = env_of(shared)
    result = run_main(capsys, monkeypatch, env, "cleanup")
    assert result.status == 0
    # Redis removed the record itself, at its expiry.
    removed = 0 if shared.server_expires else 1
    assert result.out.startswith(f"{removed} expired record{'' if removed == 1 else 's'} removed from ")
    assert run_main(capsys, monkeypatch, env, "cleanup").out.startswith("0 expired records removed")
    assert run_main(capsys, monkeypatch, env, "stats").out.startswith("live sessions: 1 (")


# A store that is down, and settings to fix.


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0?socket_connect_timeout=0.5&socket_timeout=0.5",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/test?connect_timeout=1&cleanup_interval=0",
    ],
    ids=["redis", "postgres"],
)
def test_check_of_a_store_that_is_down_fails_naming_the_variable(url: str, tmp_path: Path) -> None:
    result = run_process("check", env={"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": url}, cwd=tmp_path)
    assert result.status == 1
    assert "error: the store is unreachable: " in result.err
    assert "SESSION_STORE_URL=" in result.err and "is the server up" in result.err
    assert "Traceback" not in result.err
    assert PASSWORD not in result.out + result.err and SECRET not in result.out + result.err


def test_store_failures_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    env = {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": f"sqlite:///{tmp_path / 'no-such-directory' / 's.db'}"}
    unreachable = run_main(capsys, monkeypatch, env, "check")
    assert unreachable.status == 1
    assert "error: the store is unreachable: SQLiteStore: open at SQLite" in unreachable.err
    assert "unable to open database file" in unreachable.err and "SESSION_STORE_URL=sqlite:///" in unreachable.err

    (tmp_path / "not-a-database.db").write_bytes(b"this is no SQLite file " * 100)
    env["SESSION_STORE_URL"] = f"sqlite:///{tmp_path / 'not-a-database.db'}"
    failed = run_main(capsys, monkeypatch, env, "stats")
    assert failed.status == 1 and failed.err.startswith("fastapi-sessions: error: SQLiteStore: open at SQLite")
    assert "file is not a database" in failed.err and "unreachable" not in failed.err

    def no_driver(url: str) -> SessionStore:
        raise missing_driver("redis", "redis")

    monkeypatch.setattr(_commands, "store_from_url", no_driver)
    missing = run_main(capsys, monkeypatch, env, "check")
    assert (missing.status, missing.err) == (
        1,
        "fastapi-sessions: error: this store needs the 'redis' package: pip install 'fastapi-sessions-typed[redis]'\n",
    )
    file = run_main(capsys, monkeypatch, env, "--env-file", "nowhere.env", "check")
    assert (file.status, file.err) == (2, "fastapi-sessions: error: --env-file nowhere.env: no such file\n")


def test_check_without_a_secret_names_the_variable(tmp_path: Path) -> None:
    result = run_process("check", env={}, cwd=tmp_path)
    assert result.status == 1
    assert result.err == (
        "fastapi-sessions: error: invalid session settings:\n  - SESSION_SECRET_KEY: required but not set\n"
    )


def test_check_of_bad_settings_gives_the_library_messages(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    weak = "changeme"
    result = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": weak, "SESSION_MAX_AGE": "soon"}, "check")
    assert result.status == 1
    assert "SESSION_SECRET_KEY is 8 characters" in result.err and "SESSION_MAX_AGE" in result.err
    assert weak not in result.err.replace("SESSION_SECRET_KEY", "")
    env = {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": f"redis://u:{PASSWORD}@h:port"}
    bad_url = run_main(capsys, monkeypatch, env, "check")
    assert bad_url.status == 1 and "SESSION_STORE_URL" in bad_url.err and PASSWORD not in bad_url.err
    env = {"SESSION_SECRET_KEY": SECRET, "SESSION_ENCRYPTION_KEYS": "not-a-key"}
    bad_key = run_main(capsys, monkeypatch, env, "check")
    assert bad_key.status == 1 and "SESSION_ENCRYPTION_KEYS: each key must be 32 random bytes" in bad_key.err
    assert "not-a-key" not in bad_key.err


def test_settings_come_from_an_env_file_or_the_working_directory(tmp_path: Path) -> None:
    database = tmp_path / "from-env-file.db"
    (tmp_path / "app.env").write_text(f"SESSION_SECRET_KEY={SECRET}\nSESSION_STORE_URL=sqlite:///{database}\n")
    result = run_process("--env-file", "app.env", "check", env={}, cwd=tmp_path)
    assert result.status == 0, result.err
    assert f"(SQLite {database} (table fastapi_sessions))" in result.out
    after = run_process("stats", "--env-file", str(tmp_path / "app.env"), env={}, cwd=tmp_path)
    assert after.status == 0 and after.out.startswith("live sessions: 0 (SQLite")
    (tmp_path / ".env").write_text(f"SESSION_SECRET_KEY={SECRET}\n")
    assert run_process("check", env={}, cwd=tmp_path).status == 0  # ./.env, as the application reads it
    missing = run_process("--env-file", "nowhere.env", "check", env={}, cwd=tmp_path)
    assert (missing.status, missing.err) == (2, "fastapi-sessions: error: --env-file nowhere.env: no such file\n")


# The memory store, MongoDB (the fake) and stores of other packages: in this process.


def test_memory_store_is_this_process_own(tmp_path: Path) -> None:
    result = run_process("stats", env={"SESSION_SECRET_KEY": SECRET}, cwd=tmp_path)
    assert result.status == 0
    assert result.out.startswith("live sessions: 0 (this process's memory)\nnote: SESSION_STORE_URL is memory://")


def test_check_of_the_memory_store_says_it_is_per_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    check = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": SECRET}, "check")
    assert (
        check.status == 0
        and "store: reachable (this process's memory)\nnote: SESSION_STORE_URL is memory://" in check.out
    )


def test_mongodb_fake_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    from mongomock_motor import AsyncMongoMockClient

    from fastapi_sessions.stores.mongodb import MongoStore

    mongo: Any = AsyncMongoMockClient()

    def store(url: str = "") -> SessionStore:  # one database, in this process, whatever the URL
        return MongoStore(mongo, database="cli_test")

    monkeypatch.setattr(_commands, "store_from_url", store)
    url = "mongodb://mongo.invalid/cli_test"
    devices = log_in_devices(app_settings(url), store())
    env = {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": url}
    assert run_main(capsys, monkeypatch, env, "check").status == 0
    listed = json.loads(run_main(capsys, monkeypatch, env, "sessions", "alice", "--json").out)
    assert [item["user_agent"] for item in listed] == list(AGENTS)
    assert run_main(capsys, monkeypatch, env, "stats").out.startswith("live sessions: 4 (MongoDB")
    revoked = run_main(capsys, monkeypatch, env, "revoke", "alice", "--all")
    assert revoked.out == '3 sessions of user "alice" revoked\n'
    assert not logged_in(devices, AGENTS[0])
    assert run_main(capsys, monkeypatch, env, "cleanup").out.startswith("0 expired records removed")


class UncountedStore(MemoryStore):
    """A store of another package, written before `SessionStore.count` existed."""

    count = SessionStore.count


def test_a_store_that_cannot_count_is_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    monkeypatch.setattr(_commands, "store_from_url", lambda url: UncountedStore())
    result = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": SECRET}, "stats")
    assert (result.status, result.out) == (1, "")
    assert result.err == (
        "fastapi-sessions: error: UncountedStore cannot count its sessions: "
        "it does not implement SessionStore.count()\n"
    )


def test_listing_changes_nothing_and_needs_the_encryption_keys_to_show_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    key, other_key = (
        run_main(capsys, monkeypatch, {}, "generate-secret", "--encryption-key").out.strip() for _ in "ab"
    )
    url = f"sqlite:///{tmp_path / 'encrypted.db'}?cleanup_interval=0"
    log_in_devices(app_settings(url, encryption_keys=[key]))
    env = {"SESSION_SECRET_KEY": SECRET, "SESSION_STORE_URL": url}

    # Without the key (or with another), a device shows no user agent or IP; the session stays.
    for keys in ({}, {"SESSION_ENCRYPTION_KEYS": other_key}):
        result = run_main(capsys, monkeypatch, {**env, **keys}, "sessions", "alice", "--json")
        assert result.status == 0
        listed = json.loads(result.out)
        if keys:
            assert [(item["user_agent"], item["ip"]) for item in listed] == [(None, None)] * 3
            assert "3 of the user's sessions do not decrypt with SESSION_ENCRYPTION_KEYS" in result.err
        else:  # no keys: the ciphertext is all there is to show
            assert len(listed) == 3 and all(item["user_agent"].startswith("v2.") for item in listed)
    listed = json.loads(
        run_main(capsys, monkeypatch, {**env, "SESSION_ENCRYPTION_KEYS": key}, "sessions", "alice", "--json").out
    )
    assert [item["user_agent"] for item in listed] == list(AGENTS)


def test_table_escapes_control_characters_a_client_sent(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    clock = FakeClock(start=time.time())
    store = MemoryStore(clock=clock)
    monkeypatch.setattr(_commands, "store_from_url", lambda url: store)

    async def make_records() -> None:
        await store.create("expired", {"_created": clock.now}, ttl=1, user_id="u\x1b")
        clock.advance(2)  # past the store's expiry
        await store.create("too-old", {"_created": 0.0}, ttl=60, user_id="u\x1b")  # past the absolute lifetime
        await store.create("k1", {"_created": time.time(), "_agent": "evil\x1b[2J\nagent"}, ttl=60, user_id="u\x1b")

    asyncio.run(make_records())
    result = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": SECRET}, "sessions", "u\x1b")
    assert result.status == 0
    assert "\x1b" not in result.out and "evil\\x1b[2J\\x0aagent" in result.out
    _, row = result.out.splitlines()
    assert row.split()[5] == "-"  # no IP
    no_session = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": SECRET}, "revoke", "u\x1b", "k2")
    assert no_session.status == 1 and '"u\\x1b"' in no_session.err


# The command line itself.


def test_the_console_script_is_main() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, name = scripts["fastapi-sessions"].partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_python_m_runs_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["fastapi-sessions", "generate-secret"])
    monkeypatch.delitem(sys.modules, "fastapi_sessions.__main__", raising=False)
    with pytest.raises(SystemExit) as exited:
        importlib.import_module("fastapi_sessions.__main__")  # what python -m fastapi_sessions runs
    assert exited.value.code == 0 and len(capsys.readouterr().out.strip()) >= MIN_SECRET_LENGTH


def test_help_names_every_command_and_the_exit_statuses(tmp_path: Path) -> None:
    result = run_process("--help", env={}, cwd=tmp_path)
    assert result.status == 0
    for command in ("check", "cleanup", "stats", "sessions", "revoke", "generate-secret"):
        assert f"\n    {command}" in result.out
    assert "exit status:\n  0  success\n  1  failure" in result.out and "2  usage error" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["sessions"], "the following arguments are required: USER"),
        (["revoke", "alice"], "give either a HANDLE or --all"),
        (["revoke", "alice", "h1", "--all"], "give either a HANDLE or --all"),
        (["revoke", "alice", "h1", "--keep", "h2"], "--keep goes with --all"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    result = run_main(capsys, monkeypatch, {"SESSION_SECRET_KEY": SECRET}, *args)
    assert result.status == 2
    assert message in result.err and result.err.startswith("usage: fastapi-sessions")


def test_global_options_go_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    (tmp_path / "a.env").write_text(f"SESSION_SECRET_KEY={SECRET}\n")
    assert run_main(capsys, monkeypatch, {}, "--env-file", "a.env", "-v", "stats").status == 0
    assert run_main(capsys, monkeypatch, {}, "stats", "--env-file", "a.env", "--verbose").status == 0
    version = run_main(capsys, monkeypatch, {}, "--version")
    assert version.status == 0 and version.out.startswith("fastapi-sessions ")


def test_generate_secret_makes_values_the_settings_accept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Any
) -> None:
    secrets = {run_main(capsys, monkeypatch, {}, "generate-secret").out for _ in range(3)}
    assert len(secrets) == 3
    for secret in secrets:
        assert secret.endswith("\n") and len(secret.strip()) >= MIN_SECRET_LENGTH
        SessionSettings(secret_key=secret.strip(), _env_file=None)
    key = run_main(capsys, monkeypatch, {}, "generate-secret", "--encryption-key").out.strip()
    settings = SessionSettings(secret_key=SECRET, encryption_keys=[key], _env_file=None)
    SessionManager(AuthSession, settings=settings)  # builds the cipher, which checks the key
