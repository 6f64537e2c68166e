"""Faults on one Redis server, through RedisStore and over HTTP, with each client a ``redis://`` URL can select.

Each test runs its own redis-server (on a free port, stopped by its process ID) once per ``?driver=``:
the store's own pipelining client (``builtin``) and redis-py's asyncio client (``redis-py``), so both
are held to the same suite: a server stalled, frozen, killed and restarted; passwords and ACL users,
right and wrong; TLS with a trusted, an untrusted and a client certificate; the drivers' own timeouts;
and a reply that arrives after its caller gave up.
"""

import asyncio
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from fastapi_sessions import AuthSession, SessionManager
from fastapi_sessions.signing import new_session_id
from fastapi_sessions.stores.redis import RedisStore
from tests.redis_servers import HOST, RedisServer, StallingLink, redis_server
from tests.support import client, login_app, make_manager, set_cookies
from tests.tls_certs import TlsFiles, make_tls_files

DRIVERS = ["builtin", "redis-py"]
DEADLINE = 0.2  # SESSION_STORE_TIMEOUT of these tests: the request's deadline
BOUND = 10 * DEADLINE  # a 503 comes well within this
TTL = 60.0

pytestmark = pytest.mark.parametrize("driver", DRIVERS)


def with_driver(url: str, driver: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}driver={driver}"


def http_manager(url: str, driver: str, store_timeout: float = DEADLINE) -> SessionManager[AuthSession]:
    """A manager on ``driver`` whose store calls are cancelled after ``store_timeout``, as in production."""
    return make_manager(AuthSession, RedisStore.from_url(with_driver(url, driver)), store_timeout=store_timeout)


@contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """The server stopped (SIGSTOP) inside the block: connections stay open and no reply comes; SIGCONT after."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


@contextmanager
def started(server: RedisServer) -> Iterator[RedisServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def timed_get(browser: object, path: str) -> tuple[int, float]:
    began = time.monotonic()
    response = browser.get(path)  # type: ignore[attr-defined]
    return response.status_code, time.monotonic() - began


# A server that stops answering.


def test_a_stalled_connection_costs_one_503_and_the_next_request_reconnects(tmp_path: Path, driver: str) -> None:
    with redis_server(tmp_path) as server, StallingLink(server.port) as link:
        with client(login_app(http_manager(f"redis://{HOST}:{link.port}/0", driver))) as browser:
            assert browser.post("/login/alice").status_code == 200
            assert browser.get("/me").json() == {"user": "alice"}
            opened = link.connections

            link.stall()  # the server is fine; the open connections will never carry a reply again
            began = time.monotonic()
            response = browser.get("/me")
            assert response.status_code == 503 and set_cookies(response) == []
            assert time.monotonic() - began < BOUND

            response = browser.get("/me")  # the stalled connection was dropped: a new one
            assert response.status_code == 200 and response.json() == {"user": "alice"}
            assert link.connections == opened + 1
            assert browser.get("/me").json() == {"user": "alice"}


def test_a_frozen_server_costs_a_503_per_request_while_frozen_only(tmp_path: Path, driver: str) -> None:
    with redis_server(tmp_path) as server:
        with client(login_app(http_manager(f"{server.url}/0", driver))) as browser:
            assert browser.post("/login/alice").status_code == 200
            for user, next_user in (
                ("alice", "bob"),
                ("bob", "carol"),
            ):  # two stalls, each followed by a good connection
                with frozen(server):
                    for _ in range(2):
                        status, took = timed_get(browser, "/me")
                        assert status == 503 and took < BOUND
                assert browser.get("/me").json() == {"user": user}
                assert browser.post(f"/login/{next_user}").status_code == 200
                assert browser.get("/me").json() == {"user": next_user}


def test_the_drivers_own_reply_timeout(tmp_path: Path, driver: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "fastapi_sessions")
    with redis_server(tmp_path) as server:
        # socket_timeout runs out long before the request's deadline does: the driver gives up first.
        sessions = http_manager(f"{server.url}/0?socket_timeout=0.2", driver, store_timeout=30.0)
        with client(login_app(sessions)) as browser:
            assert browser.post("/login/alice").status_code == 200
            with frozen(server):
                status, took = timed_get(browser, "/me")
            assert status == 503 and took < BOUND
            assert "TimeoutError" in caplog.text
            assert browser.get("/me").json() == {"user": "alice"}


def test_killed_and_restarted_on_the_same_port(tmp_path: Path, driver: str) -> None:
    server = RedisServer(tmp_path, persistent=True)
    with started(server):
        sessions = http_manager(f"{server.url}/0?socket_connect_timeout=0.5", driver, store_timeout=2.0)
        with client(login_app(sessions)) as browser:
            assert browser.post("/login/alice").status_code == 200
            server.kill()
            for _ in range(2):
                status, took = timed_get(browser, "/me")
                assert status == 503 and took < 2.0
            response = browser.post("/login/bob")
            assert response.status_code == 503 and set_cookies(response) == []
            assert browser.get("/health").json() == {"ok": True}  # no session, no Redis needed

            server.start()  # the same port and append-only file; the app was not restarted
            assert browser.get("/me").json() == {"user": "alice"}
            assert browser.post("/login/bob").status_code == 200
            assert browser.get("/me").json() == {"user": "bob"}


@pytest.mark.anyio
async def test_a_reply_after_its_caller_gave_up_reaches_no_later_caller(tmp_path: Path, driver: str) -> None:
    with redis_server(tmp_path) as server:
        async with RedisStore.from_url(with_driver(f"{server.url}/0", driver)) as store:
            for key in ("a", "b"):
                await store.create(key, {"who": key}, ttl=TTL, user_id=None)
            with frozen(server):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(DEADLINE):  # the caller's deadline, as SESSION_STORE_TIMEOUT is
                        await store.load("a")
            # Redis now answers the load of "a" on the connection its caller left; no one else may take it.
            for key in ("b", "a", "b"):
                loaded = await store.load(key)
                assert loaded is not None and loaded.data == {"who": key}


# Passwords and ACL users.


def test_a_password_and_acl_users(tmp_path: Path, driver: str) -> None:
    server = RedisServer(tmp_path, password="s3cret", user=("sessions", "acl-pw"))  # the `user` directive
    with started(server):
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "later", "on", ">p@ss word", "~*", "&*", "+@all")
        urls = [
            f"redis://:s3cret@{HOST}:{server.port}/0",
            f"redis://sessions:acl-pw@{HOST}:{server.port}/3",
            f"redis://later:{quote('p@ss word', safe='')}@{HOST}:{server.port}/0",
        ]
        for url in urls:
            with client(login_app(http_manager(url, driver))) as browser:
                assert browser.post("/login/alice").status_code == 200
                assert browser.get("/me").json() == {"user": "alice"}
        with server.client() as admin:
            assert admin.execute_command("ACL", "LOG") == []  # no refused attempt on the way


REFUSALS = {
    # (user, password) in the URL: what each driver says in the log.
    ("", "not-the-pw"): {
        "builtin": "authentication as 'default' refused: WRONGPASS",
        "redis-py": "invalid username-password pair",
    },
    ("sessions", "not-the-pw"): {
        "builtin": "authentication as 'sessions' refused: WRONGPASS",
        "redis-py": "invalid username-password pair",
    },
    ("", ""): {
        "builtin": "Redis wants a password, and the URL gives none: NOAUTH",
        "redis-py": "HELLO must be called with the client already authenticated",
    },
}


@pytest.mark.parametrize(("user", "password"), list(REFUSALS))
def test_wrong_credentials_are_a_clear_503_that_never_shows_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, driver: str, user: str, password: str
) -> None:
    caplog.set_level(logging.DEBUG, "fastapi_sessions")
    server = RedisServer(tmp_path, password="s3cret", user=("sessions", "acl-pw"))
    with started(server):
        credentials = f"{user}:{password}@" if password else ""
        sessions = http_manager(f"redis://{credentials}{HOST}:{server.port}/0", driver)
        with client(login_app(sessions)) as browser:  # the app starts, and the log says why Redis refuses it
            assert "open" in caplog.text and REFUSALS[(user, password)][driver] in caplog.text
            cookie = f"{sessions.cookie_name}={sessions.signer.sign(new_session_id())}"
            response = browser.get("/me", headers={"cookie": cookie})
            assert response.status_code == 503
            assert browser.post("/login/alice").status_code == 503
    assert "not-the-pw" not in caplog.text and "not-the-pw" not in response.text
    assert "s3cret" not in caplog.text


def test_a_password_the_server_does_not_ask_for(tmp_path: Path, caplog: pytest.LogCaptureFixture, driver: str) -> None:
    caplog.set_level(logging.DEBUG, "fastapi_sessions")
    with redis_server(tmp_path) as server:
        sessions = http_manager(f"redis://:unexpected-pw@{HOST}:{server.port}/0", driver)
        with client(login_app(sessions)) as browser:
            response = browser.post("/login/alice")
            if driver == "redis-py":
                # It authenticates as the user 'default' (HELLO 3 AUTH default ...), whom Redis lets in
                # with any password while the server has none ('nopass').
                assert response.status_code == 200
            else:  # AUTH <password> alone, which Redis refuses then: a misconfiguration, said plainly
                assert response.status_code == 503
                assert "the URL gives a password, but Redis has none set for the default user" in caplog.text
    assert "unexpected-pw" not in caplog.text and "unexpected-pw" not in response.text


# TLS.


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


def rediss(server: RedisServer, **options: Path) -> str:
    query = "&".join(f"{name}={quote(str(path), safe='')}" for name, path in options.items())
    return f"{server.url}/0?{query}"


def test_tls_with_the_servers_ca(tmp_path: Path, tls: TlsFiles, driver: str) -> None:
    with started(RedisServer(tmp_path, tls=tls)) as server:
        with client(login_app(http_manager(rediss(server, ssl_ca_certs=tls.ca), driver))) as browser:
            assert browser.post("/login/alice").status_code == 200
            assert browser.get("/me").json() == {"user": "alice"}


def test_tls_refuses_a_certificate_of_another_ca(
    tmp_path: Path, tls: TlsFiles, caplog: pytest.LogCaptureFixture, driver: str
) -> None:
    caplog.set_level(logging.WARNING, "fastapi_sessions")
    impostor = dataclasses.replace(tls, ca=tls.untrusted_ca, server_cert=tls.impostor_cert, server_key=tls.impostor_key)
    with started(RedisServer(tmp_path, tls=impostor)) as server:
        for url in (rediss(server, ssl_ca_certs=tls.ca), rediss(server)):  # our CA; the system's CAs
            caplog.clear()
            with client(login_app(http_manager(url, driver, store_timeout=2.0))) as browser:
                assert "certificate verify failed" in caplog.text
                assert browser.post("/login/alice").status_code == 503


def test_tls_with_a_client_certificate(tmp_path: Path, tls: TlsFiles, driver: str) -> None:
    with started(RedisServer(tmp_path, tls=tls, tls_clients=True)) as server:
        url = rediss(server, ssl_ca_certs=tls.ca, ssl_certfile=tls.client_cert, ssl_keyfile=tls.client_key)
        with client(login_app(http_manager(url, driver))) as browser:
            assert browser.post("/login/alice").status_code == 200
            assert browser.get("/me").json() == {"user": "alice"}
        # Without one, the server ends the handshake.
        with client(login_app(http_manager(rediss(server, ssl_ca_certs=tls.ca), driver, 2.0))) as browser:
            assert browser.post("/login/alice").status_code == 503
