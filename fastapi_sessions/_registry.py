"""Per-user session control: list a user's sessions, revoke one or all, and keep the per-user limit."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from fastapi_sessions._encryption import DecryptionError
from fastapi_sessions._events import EventHub
from fastapi_sessions._gateway import StoreGateway
from fastapi_sessions._logs import lifecycle
from fastapi_sessions._metadata import AGENT, CREATED, IP, PLAIN, SEEN
from fastapi_sessions._policy import SessionPolicy
from fastapi_sessions.exceptions import SessionLimitError

__all__ = ["SessionInfo", "UserSessions"]

logger = logging.getLogger("fastapi_sessions")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session of a user, as shown on a "your devices" page.

    Attributes:
        handle: Opaque name of the session for `SessionManager.revoke_session`. It is a hash of the
            session ID and cannot be used as a cookie.
        created_at: When the session was created.
        last_seen: When the session was last used (to within ``touch_after``).
        user_agent: The ``User-Agent`` of the request that created or last regenerated it.
        ip: The client address of that request.
    """

    handle: str
    created_at: datetime
    last_seen: datetime
    user_agent: str | None
    ip: str | None


class UserSessions:
    """Reads and revokes sessions through the store's per-user index (never by scanning keys).

    Args:
        gateway: The store.
        policy: Decides which records are still live.
        limit: ``max_sessions_per_user``, or ``None`` for no limit.
        limit_policy: What a login at the limit does: evict the oldest session, or be refused.
        events: Told of each revocation.
    """

    __slots__ = ("events", "gateway", "limit", "limit_policy", "policy")

    def __init__(
        self,
        gateway: StoreGateway,
        policy: SessionPolicy,
        *,
        limit: int | None = None,
        limit_policy: Literal["evict_oldest", "refuse"] = "evict_oldest",
        events: EventHub,
    ) -> None:
        self.events = events
        self.gateway = gateway
        self.policy = policy
        self.limit = limit
        self.limit_policy = limit_policy

    async def inspect(self, user_id: str) -> list[SessionInfo]:
        """The live sessions of ``user_id`` as the store holds them, oldest first, changing nothing.

        For tools that have no session model (the command line): unlike `list`, records are not
        validated against the model, and none is removed. A session that does not decrypt with
        ``encryption_keys`` is listed without its user agent and IP, and a log line says how many.
        """
        keys = await self.gateway.user_keys(user_id)
        records = await self.gateway.load_many(keys) if keys else []
        infos = []
        undecryptable = 0
        for key, record in zip(keys, records, strict=True):
            if record is None or record.user_id != user_id or self.policy.expiry_reason(record.data):
                continue
            try:
                data = self.policy.decrypt(record.data, key)
            except DecryptionError:
                undecryptable += 1
                data = {name: value for name, value in record.data.items() if name in PLAIN}
            infos.append(_session_info(key, data))
        if undecryptable:
            logger.warning(
                "%d of the user's sessions do not decrypt with SESSION_ENCRYPTION_KEYS: listed without agent or IP",
                undecryptable,
            )
        infos.sort(key=lambda info: info.created_at)
        return infos

    async def list(self, user_id: str) -> list[SessionInfo]:
        """The live sessions of ``user_id``, oldest first."""
        gateway = self.gateway
        keys = await gateway.user_keys(user_id)
        if not keys:
            return []
        records = await gateway.load_many(keys)
        infos = []
        unreadable = []
        for key, record in zip(keys, records, strict=True):
            if record is None or record.user_id != user_id or self.policy.expiry_reason(record.data):
                continue
            try:
                data, _ = self.policy.decode(record.data, key)
            except (DecryptionError, ValidationError):
                # Encrypted with a retired key, or written for an older model: no request can load it,
                # so it is no session of the user's, counts toward no limit, and goes.
                unreadable.append(key)
                continue
            created = float(data[CREATED])
            infos.append(
                SessionInfo(
                    handle=key,
                    created_at=datetime.fromtimestamp(created, UTC),
                    last_seen=datetime.fromtimestamp(float(data.get(SEEN, created)), UTC),
                    user_agent=data.get(AGENT),
                    ip=data.get(IP),
                )
            )
        for key in unreadable:
            await gateway.delete(key, user_id=user_id)
        if unreadable:
            logger.info("sessions removed: %d of a user's sessions no longer load", len(unreadable))
        infos.sort(key=lambda info: info.created_at)
        return infos

    async def revoke(self, user_id: str, handle: str) -> bool:
        """Revoke the session ``handle`` of ``user_id``; whether it was live.

        One store operation: a regeneration of that session either loses (the session is gone) or
        came first (``False``: the handle is stale, and a new listing shows the session's new one).
        """
        revoked = await self.gateway.delete_user_session(user_id, handle)
        if revoked:
            logger.info(
                "session revoked: one session of a user", extra=lifecycle("revoked", handle, user_id, "revoke_session")
            )
            self.events.emit("revoked", None, handle, user_id, "revoke_session")
        return revoked

    async def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke every session of ``user_id`` but ``keep``; how many were live.

        One store operation, atomic with regeneration (`SessionStore.delete_user_sessions`): a
        session that moves to a new key meanwhile is revoked under that key too.
        """
        count = await self.gateway.delete_user_sessions(user_id, keep=keep)
        if count:
            logger.info(
                "sessions revoked: %d sessions of a user",
                count,
                extra=lifecycle("revoked", None, user_id, "revoke_all_sessions"),
            )
            self.events.emit("revoked", None, None, user_id, "revoke_all_sessions", count=count)
        return count

    async def make_room(self, user_id: str, *, replacing: str | None) -> None:
        """Before ``user_id`` gets one more session, keep them within the limit.

        Args:
            user_id: The user logging in.
            replacing: The handle of the session this login replaces, which does not count.

        Raises:
            SessionLimitError: the user is at the limit and the policy is ``refuse``.
        """
        limit = self.limit
        if limit is None:
            return
        live = [info for info in await self.list(user_id) if info.handle != replacing]
        excess = len(live) + 1 - limit
        if excess <= 0:
            return
        if self.limit_policy == "refuse":
            raise SessionLimitError(f"user already has {len(live)} sessions (SESSION_MAX_SESSIONS_PER_USER={limit})")
        for info in live[:excess]:  # oldest first
            if await self.gateway.delete(info.handle, user_id=user_id):
                logger.info(
                    "session revoked: oldest session of a user at SESSION_MAX_SESSIONS_PER_USER=%d",
                    limit,
                    extra=lifecycle("revoked", info.handle, user_id, "limit"),
                )
                self.events.emit("revoked", None, info.handle, user_id, "limit")


def _session_info(key: str, data: dict[str, Any]) -> SessionInfo:
    """What a "your devices" page shows of the live session ``key``, from its record in clear (as `list` builds it)."""
    created = float(data[CREATED])
    return SessionInfo(
        handle=key,
        created_at=datetime.fromtimestamp(created, UTC),
        last_seen=datetime.fromtimestamp(float(data.get(SEEN, created)), UTC),
        user_agent=data.get(AGENT),
        ip=data.get(IP),
    )
