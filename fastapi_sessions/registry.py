"""Per-user session control: list a user's sessions, revoke one, all, or all but the current one."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi_sessions.encryption import DecryptionError

if TYPE_CHECKING:
    from fastapi_sessions.manager import SessionManager

__all__ = ["SessionInfo", "UserSessions"]


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
    """Reads and revokes sessions through the store's per-user index (never by scanning keys)."""

    def __init__(self, manager: "SessionManager[Any]") -> None:
        self.manager = manager

    async def list(self, user_id: str) -> list[SessionInfo]:
        manager = self.manager
        store = manager.store
        keys = await manager.call_store(store.user_keys(user_id))
        if not keys:
            return []
        records = await manager.call_store(store.load_many(keys))
        infos = []
        for key, record in zip(keys, records, strict=True):
            if record is None or record.user_id != user_id or manager.expiry_reason(record.data):
                continue
            try:
                data = manager.decode_data(record.data)
            except DecryptionError:
                # Encrypted with a key no longer in SESSION_ENCRYPTION_KEYS: dead to `load` too, so not listed.
                continue
            created = float(data["_created"])
            infos.append(
                SessionInfo(
                    handle=key,
                    created_at=datetime.fromtimestamp(created, UTC),
                    last_seen=datetime.fromtimestamp(float(data.get("_seen", created)), UTC),
                    user_agent=data.get("_agent"),
                    ip=data.get("_ip"),
                )
            )
        infos.sort(key=lambda info: info.created_at)
        return infos

    async def revoke(self, user_id: str, handle: str) -> bool:
        manager = self.manager
        if handle not in await manager.call_store(manager.store.user_keys(user_id)):
            return False
        return await manager.call_store(manager.store.delete(handle, user_id=user_id))

    async def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        manager = self.manager
        revoked = 0
        for handle in await manager.call_store(manager.store.user_keys(user_id)):
            if handle != keep and await manager.call_store(manager.store.delete(handle, user_id=user_id)):
                revoked += 1
        return revoked
