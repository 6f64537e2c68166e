"""`RequestSession`: one request's view of its session, and the one path that commits it."""

import logging
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.types import Scope

from fastapi_sessions.encryption import DecryptionError
from fastapi_sessions.exceptions import SessionConflictError
from fastapi_sessions.model import FlashMessage, SessionModel
from fastapi_sessions.signing import new_session_id, store_key
from fastapi_sessions.stores.base import UpdateResult

if TYPE_CHECKING:
    from fastapi_sessions.manager import SessionManager

__all__ = ["INSTALLED", "RequestSession"]

logger = logging.getLogger("fastapi_sessions")

_MISSING: Any = object()
_MAX_AGENT_LENGTH = 256

INSTALLED: Any = object()
"""Put in the scope by the middleware: the request may have a session, none was asked for yet."""


class RequestSession:
    """The session of one request: loaded on first use, committed once when the response starts.

    Nothing here touches the store unless a route asks for the session. The commit writes only what
    changed, never recreates a session deleted meanwhile, and issues a new ID (deleting the old
    record) on regeneration and on every privilege change.
    """

    __slots__ = (
        "_destroy",
        "_meta_changes",
        "_regenerate",
        "_rotate_csrf",
        "cookie_present",
        "key",
        "manager",
        "meta",
        "model",
        "scope",
        "session_id",
        "stale_key",
        "stored_data",
        "stored_user_id",
        "version",
    )

    def __init__(self, manager: "SessionManager[Any]", scope: Scope) -> None:
        self.manager = manager
        self.scope = scope
        self.model: SessionModel | None = None
        self.session_id: str | None = None
        self.key: str | None = None
        self.stored_data: dict[str, Any] = {}
        self.stored_user_id: str | None = None
        self.meta: dict[str, Any] = {}
        self.version = 0
        self.cookie_present = False
        self.stale_key = False
        self._meta_changes: dict[str, Any] = {}
        self._regenerate = False
        self._rotate_csrf = False
        self._destroy = False

    # Loading.

    async def load(self) -> SessionModel:
        """Return the session model, loading it from the store on first use."""
        if self.model is not None:
            return self.model
        manager = self.manager
        model: SessionModel | None = None
        value, count = manager.cookie_reader.read(self.scope["headers"])
        self.cookie_present = count > 0
        if count > 1:
            logger.warning("session rejected: %d session cookies in one request (cookie tossing?)", count)
        elif value is not None:
            model = await self._load_existing(value)
        if model is None:
            model = manager.model_cls()
            self.stored_data = model.model_dump(mode="json")
        object.__setattr__(model, "_request_session", self)
        self.model = model
        return model

    async def _load_existing(self, value: str) -> SessionModel | None:
        manager = self.manager
        unsigned = manager.signer.unsign(value)
        if unsigned is None:
            logger.info("session rejected: cookie is malformed or its signature does not verify")
            return None
        session_id, key = unsigned.session_id, unsigned.key
        stored = await manager.call_store(manager.store.load(key))
        if stored is None:
            logger.info("session rejected: %s is unknown or expired in the store", manager.signer.log_id(session_id))
            return None
        data = stored.data
        expired = manager.expiry_reason(data)
        if expired:
            logger.info("session expired: %s (%s timeout)", manager.signer.log_id(session_id), expired)
            return None
        try:
            data = manager.decode_data(data)
            model: SessionModel = manager.model_cls.model_validate(data)
        except DecryptionError as exc:
            logger.warning("session rejected: %s: %s", manager.signer.log_id(session_id), str(exc))
            return None
        except ValidationError as exc:
            logger.warning(
                "session rejected: %s no longer validates against %s (%d errors); starting a new session",
                manager.signer.log_id(session_id),
                manager.model_cls.__name__,
                exc.error_count(),
            )
            return None
        self.session_id = session_id
        self.key = key
        self.stored_data = data
        self.stored_user_id = stored.user_id
        self.version = stored.version
        self.meta = data  # the "_" names in it; model fields are read from the model, never from here
        self.stale_key = unsigned.stale_key
        return model

    def release(self) -> None:
        """Let go of the model once the response is sent; its methods then raise `SessionNotBoundError`."""
        if self.model is not None:
            object.__setattr__(self.model, "_request_session", None)
            self.model = None

    # Requests made by the model's methods.

    def regenerate(self, *, rotate_csrf: bool = False) -> None:
        # After destroy(), a login (logout then login as another user) starts a new session; the
        # destroyed one stays dead either way.
        self._destroy = False
        self._regenerate = True
        self._rotate_csrf = self._rotate_csrf or rotate_csrf

    def destroy(self) -> None:
        self._destroy = True
        self._regenerate = False
        self.meta = {}
        self._meta_changes = {}

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.manager.clock(), UTC)

    def set_meta(self, name: str, value: Any) -> None:
        self.meta[name] = value
        self._meta_changes[name] = value

    def add_flash(self, flash: FlashMessage) -> None:
        if self._destroy:
            # A message for the page after a logout goes in a new session; the destroyed one stays dead.
            self._destroy = False
            self._regenerate = True
        self.set_meta("_flash", [*self.meta.get("_flash", []), list(flash)])

    def pop_flashes(self, category: str | None) -> list[FlashMessage]:
        queued = [FlashMessage(*item) for item in self.meta.get("_flash", [])]
        taken = [flash for flash in queued if category is None or flash.category == category]
        if taken:
            kept = [list(flash) for flash in queued if flash not in taken]
            self.set_meta("_flash", kept)
        return taken

    def csrf_token(self) -> str:
        token = self.meta.get("_csrf")
        if not isinstance(token, str) or (self._rotate_csrf and "_csrf" not in self._meta_changes):
            token = secrets.token_urlsafe(32)
            self.set_meta("_csrf", token)
        return token

    # Committing.

    async def commit(self) -> list[tuple[bytes, bytes]]:
        """Save what changed and return the headers the response needs (``Set-Cookie`` and friends)."""
        model = self.model
        if model is None:
            return []
        headers: list[tuple[bytes, bytes]] = []
        manager = self.manager
        writer = manager.cookie_writer

        if self._destroy:
            if self.key is not None:
                await manager.call_store(manager.store.delete(self.key, user_id=self.stored_user_id))
                logger.info("session destroyed: %s", manager.signer.log_id(self.session_id or ""))
                self.key = None
            if self.cookie_present:
                headers.append((b"set-cookie", writer.clear()))
            return headers

        now = manager.clock()
        current = model.model_dump(mode="json")
        stored = self.stored_data
        changes = {name: value for name, value in current.items() if stored.get(name, _MISSING) != value}
        privileged = model.privileged_fields
        if privileged and not privileged.isdisjoint(changes) and self.key is not None:
            self._regenerate = True
            self._rotate_csrf = True

        if self._rotate_csrf and "_csrf" in self.meta and "_csrf" not in self._meta_changes:
            self.set_meta("_csrf", secrets.token_urlsafe(32))

        if self.key is None:
            if not changes and not self._meta_changes:
                # A cookie that named no live session is left alone rather than cleared: the browser
                # may hold a newer cookie by now (a login that raced this request), and clearing by
                # name would log it out.
                return headers
            return await self._store_new(current, now, created=now)

        if self._regenerate:
            return await self._store_new(current, now, created=self.meta.get("_created", now))

        touch = manager.settings.rolling and now - self.meta.get("_seen", 0) >= manager.settings.touch_after
        if changes or self._meta_changes or touch:
            # Fields the model no longer has (it changed since the session was stored) go with any write.
            removed = [name for name in stored if name not in current and not name.startswith("_")]
            update = {**changes, **self._meta_changes, "_seen": now}
            manager.check_size({**stored, **update})
            ttl = manager.ttl(self.meta.get("_created", now), now, now)
            expected = self.version if manager.settings.strict_updates else None
            result = await manager.call_store(
                manager.store.update(
                    self.key, manager.encode_data(update), removed=removed, ttl=ttl, expected_version=expected
                )
            )
            if result is UpdateResult.CONFLICT:
                raise SessionConflictError("the session was changed by another request; retry")
            if result is UpdateResult.MISSING:
                # Logged out or regenerated by another request meanwhile: that decision stands.
                # No Set-Cookie: the request that deleted it already answered for the cookie, and a
                # login may have set a new one since.
                logger.info(
                    "session changes dropped: %s was deleted by another request",
                    manager.signer.log_id(self.session_id or ""),
                )
                return headers
        if self.stale_key and self.session_id is not None:
            remaining = int(self.meta.get("_created", now) + manager.settings.max_age - now)
            headers.append((b"set-cookie", writer.set(manager.signer.sign(self.session_id), max(remaining, 0))))
        return headers

    async def _store_new(self, current: dict[str, Any], now: float, *, created: float) -> list[tuple[bytes, bytes]]:
        manager = self.manager
        meta = {name: value for name, value in self.meta.items() if name.startswith("_")}
        meta.update(self._meta_changes, _created=created, _seen=now)
        agent = _header(self.scope, b"user-agent")
        meta["_agent"] = agent[:_MAX_AGENT_LENGTH] if agent else None
        client = self.scope.get("client")
        meta["_ip"] = client[0] if client else None
        data = {**current, **meta}
        manager.check_size(data)
        user_id = current.get("user_id") if isinstance(current.get("user_id"), str) else None
        if user_id is not None and user_id != self.stored_user_id:
            await manager.enforce_user_limit(user_id, self)
        session_id = new_session_id()
        key = store_key(session_id)
        ttl = manager.ttl(created, now, now)
        encoded = manager.encode_data(data)
        if self.key is None:
            await manager.call_store(manager.store.create(key, encoded, ttl=ttl, user_id=user_id))
            logger.info("session created: %s", manager.signer.log_id(session_id))
        else:
            replaced = await manager.call_store(
                manager.store.replace(self.key, key, encoded, ttl=ttl, user_id=user_id, old_user_id=self.stored_user_id)
            )
            if not replaced:
                logger.info(
                    "session regeneration dropped: %s was deleted by another request",
                    manager.signer.log_id(self.session_id or ""),
                )
                return []
            logger.info(
                "session regenerated: %s -> %s",
                manager.signer.log_id(self.session_id or ""),
                manager.signer.log_id(session_id),
            )
        self.session_id, self.key, self.stored_user_id = session_id, key, user_id
        remaining = int(created + manager.settings.max_age - now)
        return [(b"set-cookie", manager.cookie_writer.set(manager.signer.sign(session_id), max(remaining, 1)))]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
