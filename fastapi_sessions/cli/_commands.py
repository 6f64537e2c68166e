"""The commands that work on the store, each an async function of a `Tool` returning an exit status."""

import json
from typing import TextIO

from fastapi_sessions._logs import printable
from fastapi_sessions.cli._arguments import FAILURE, OK
from fastapi_sessions.cli._output import counted, sessions_json, sessions_table
from fastapi_sessions.manager import SessionManager
from fastapi_sessions.model import AuthSession
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.stores import MemoryStore, store_from_url
from fastapi_sessions.stores._url import redact

__all__ = ["Tool", "check", "cleanup", "revoke", "sessions", "stats"]

# Read by `check`: store keys are 40 hex characters, so no session is ever stored under it.
_PROBE_KEY = "fastapi-sessions-check"

MEMORY_NOTE = (
    "note: SESSION_STORE_URL is memory://, which keeps sessions in each process's own memory: "
    "this command's process holds none of the application's sessions"
)


class Tool:
    """The settings, the store they name, and the library's parts over it, built as an application builds them.

    The manager checks every setting with the messages the application would log at startup. The
    user API of the manager (revoking) goes through it; what the manager has no API for (counting,
    cleaning up, a read-only listing) goes through the manager's own gateway and per-user registry,
    under the same ``SESSION_STORE_TIMEOUT``, so the store is opened once.

    Args:
        settings: The settings, from the environment and ``.env``.
        out: Where results go (standard output).

    Raises:
        SessionConfigError: a setting is invalid; the message names the variable.
        ImportError: the store's driver is missing; the message names the extra to install.
    """

    def __init__(self, settings: SessionSettings, out: TextIO) -> None:
        self.settings = settings
        self.out = out
        self.store = store_from_url(settings.store_url)
        self.manager = SessionManager(AuthSession, settings=settings, store=self.store)
        core = self.manager._core  # the manager's own parts: one store, opened once, under SESSION_STORE_TIMEOUT
        self.gateway = core.gateway
        # No model is needed to list and count: records are read as stored, never validated (see inspect).
        self.users = core.users

    @property
    def in_memory(self) -> bool:
        """The store is this process's memory, which holds none of the application's sessions."""
        return isinstance(self.store, MemoryStore)

    async def close(self) -> None:
        """Close the store, through whichever of the manager and the gateway opened it."""
        await self.manager.close()
        await self.gateway.close()

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")


async def check(tool: Tool) -> int:
    """The settings are valid (or `Tool` raised) and the store answers a read."""
    settings = tool.settings
    encryption = f"on, {counted(len(settings.encryption_keys), 'key')}" if settings.encryption_keys else "off"
    tool.print("settings: valid")
    tool.print(f"  secret key: set, {counted(len(settings.secret_key_fallbacks), 'fallback')}")
    tool.print(f"  cookie: {settings.session_cookie_name} (namespace {settings.session_namespace})")
    tool.print(f"  encryption at rest: {encryption}")
    tool.print(f"  store: {redact(settings.store_url)}")
    await tool.gateway.load(_PROBE_KEY)
    tool.print(f"store: reachable ({tool.store.location})")
    if tool.in_memory:
        tool.print(MEMORY_NOTE)
    return OK


async def cleanup(tool: Tool) -> int:
    """Remove the expired records now."""
    removed = await tool.gateway.cleanup()
    tool.print(f"{counted(removed, 'expired record')} removed from {tool.store.location}")
    return OK


async def stats(tool: Tool, *, as_json: bool) -> int:
    """Count the live sessions."""
    live = await tool.gateway.count()
    if as_json:
        tool.print(json.dumps({"store": tool.store.location, "live_sessions": live}))
    else:
        tool.print(f"live sessions: {live} ({tool.store.location})")
    if tool.in_memory and not as_json:
        tool.print(MEMORY_NOTE)
    return OK


async def sessions(tool: Tool, user_id: str, *, as_json: bool) -> int:
    """List one user's live sessions, read-only."""
    infos = await tool.users.inspect(user_id)
    if as_json:
        tool.out.write(sessions_json(infos))
    elif infos:
        tool.out.write(sessions_table(infos))
    else:
        tool.print(f"no live sessions of user {_quoted(user_id)}")
    return OK


async def revoke(tool: Tool, user_id: str, handle: str | None, *, keep: str | None, err: TextIO) -> int:
    """Revoke one session of a user (``handle``), or all of them but ``keep`` (``handle`` ``None``)."""
    if handle is None:
        revoked = await tool.manager.revoke_all_sessions(user_id, keep=keep)
        tool.print(f"{counted(revoked, 'session')} of user {_quoted(user_id)} revoked")
        return OK
    if await tool.manager.revoke_session(user_id, handle):
        tool.print(f"1 session of user {_quoted(user_id)} revoked")
        return OK
    err.write(
        f"fastapi-sessions: error: user {_quoted(user_id)} has no live session {_quoted(handle)} "
        "(it ended, or a login gave it a new handle): list them with `fastapi-sessions sessions USER`\n"
    )
    return FAILURE


def _quoted(text: str) -> str:
    """``text`` in quotes, for a message: what a terminal could take for a control sequence is escaped."""
    return f'"{printable(text)}"'
