"""`RequestSession`: one request's view of its session, loaded on first use and committed once."""

import asyncio
import datetime as dt
import decimal
import enum
import logging
import random
import secrets
import uuid
import weakref
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.types import Scope

from fastapi_sessions._commit import NOTHING, Action, CommitFacts, CommitPlan, plan_commit
from fastapi_sessions._core import SessionCore
from fastapi_sessions._encryption import DecryptionError
from fastapi_sessions._logs import lifecycle, printable
from fastapi_sessions._merge import MISSING, PLAIN, Patch, Replace, diff
from fastapi_sessions._metadata import AGENT, CREATED, CSRF, EXPIRY, FLASH, IP, SEEN, is_metadata
from fastapi_sessions._paths import browser_path, path_matches
from fastapi_sessions._transport import Via
from fastapi_sessions.exceptions import CorruptRecordError, SessionConfigError, SessionConflictError, SessionError
from fastapi_sessions.model import FlashMessage, SessionModel
from fastapi_sessions.signing import new_session_id
from fastapi_sessions.stores.base import UpdateResult

__all__ = ["RequestSession"]

logger = logging.getLogger("fastapi_sessions")

_SECURE_SCHEMES = frozenset({"https", "wss"})
_MERGE_ATTEMPTS = 16
"""Commits one request tries before answering 409: each failed one means another request's commit landed."""
_MERGE_BACKOFF = 0.0005
"""Seconds: the pause before the third attempt is up to twice this, doubling up to 64 times it (32 ms)."""
_MAX_AGENT_LENGTH = 256
_NO_HEADERS: list[tuple[bytes, bytes]] = []
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID, decimal.Decimal}
)
"""Types whose values cannot change in place: a field still holding the very object `load` gave it is unchanged."""

_INSTALLED: Any = object()
"""Put in the scope by the middleware: the request may have a session, none was asked for yet."""


class RequestSession:
    """The session of one request: loaded on first use, committed once when the response starts.

    It lives in the request's ASGI scope under its core's ``scope_key``; `install`, `of`, `pending`
    and `release` are the only code that touches that slot. Nothing here reaches the store unless a
    route asks for the session. The commit writes only what changed, never recreates a session
    deleted meanwhile, and issues a new ID (deleting the old record) on regeneration and on every
    privilege change.
    """

    __slots__ = (
        "_destroy",
        "_destroyed",
        "_loaded_values",
        "_meta_changes",
        "_outside_path",
        "_regenerate",
        "_regenerate_reason",
        "_rotate_csrf",
        "_saved_headers",
        "cookie_present",
        "core",
        "key",
        "meta",
        "model",
        "scope",
        "session_id",
        "stale_key",
        "stored_data",
        "stored_user_id",
        "token_via",
        "version",
    )

    def __init__(self, core: SessionCore, scope: Scope) -> None:
        self.core = core
        self.scope = scope
        self.model: SessionModel | None = None
        self.session_id: str | None = None
        self.key: str | None = None
        self.stored_data: dict[str, Any] = {}
        self.stored_user_id: str | None = None
        self.meta: dict[str, Any] = {}
        self.version = 0
        self.cookie_present = False
        self.token_via: Via = "cookie"
        """How the request's token came (``cookie`` or ``header``), and so how its response answers."""
        self.stale_key = False
        self._meta_changes: dict[str, Any] = {}
        self._regenerate = False
        self._rotate_csrf = False
        self._destroy = False
        self._saved_headers: list[tuple[bytes, bytes]] = []
        self._outside_path = False
        self._destroyed = False
        self._regenerate_reason = "regenerate"
        self._loaded_values: tuple[Any, ...] = ()

    @property
    def https(self) -> bool:
        """Whether the request came over https (or wss), as the server sees it after its proxy-header handling."""
        return self.scope.get("scheme") in _SECURE_SCHEMES  # `load` asks the same, inlined

    # The scope slot.

    @staticmethod
    def install(scope: Scope, core: SessionCore) -> None:
        """Mark the request as served by ``core``'s middleware; the session is made on first use."""
        scope[core.scope_key] = _INSTALLED

    @staticmethod
    async def of(connection: HTTPConnection, core: SessionCore) -> "RequestSession":
        """The request's session, loaded from the store on first use."""
        scope = connection.scope
        request_session = scope.get(core.scope_key)
        if request_session is _INSTALLED:
            request_session = scope[core.scope_key] = RequestSession(core, scope)
        elif request_session is None:
            raise RuntimeError(
                "the session middleware is not installed: call sessions.install(app) where the app is created"
            )
        if request_session.model is None:
            await request_session.load()
        return request_session

    @staticmethod
    def pending(scope: Scope, core: SessionCore) -> "RequestSession | None":
        """The request's session if a route loaded it (so it has something to commit)."""
        request_session = scope[core.scope_key]
        if request_session is _INSTALLED or request_session.model is None:
            return None
        return request_session  # type: ignore[no-any-return]

    @staticmethod
    def release(scope: Scope, core: SessionCore) -> None:
        """Empty the slot as the request ends.

        The request session, its scope and its model refer to each other; undone here, they are
        freed at once instead of piling up for the cyclic garbage collector, whose full collections
        would otherwise stall the server for milliseconds (the p99 of a busy worker).
        """
        request_session = scope.pop(core.scope_key, None)
        if isinstance(request_session, RequestSession) and request_session.model is not None:
            object.__setattr__(request_session.model, "_request_session", None)
            request_session.model = None

    # Loading.

    async def load(self) -> SessionModel:
        """Return the session model, loading it from the store on first use."""
        if self.model is not None:
            return self.model
        core = self.core
        scope = self.scope
        model: SessionModel | None = None
        sent = core.transport.read(scope["headers"], https=scope.get("scheme") in _SECURE_SCHEMES)
        self.token_via = via = sent.via
        self.cookie_present = sent.sent  # a token, in a cookie or the header: what a logout answers
        if via == "cookie" and core.scoped_path and not path_matches(browser_path(scope), core.settings.path):
            # The browser never sends the cookie here, and would not send back one set here.
            self._outside_path = True
            self.cookie_present = False
            _warn_outside_path_once(core, scope)
        elif sent.rejection is not None:
            reason = "several_cookies" if via == "cookie" else "several_tokens"
            logger.warning("%s", sent.rejection, extra=lifecycle("rejected", None, None, reason))
            core.events.emit("rejected", scope, None, None, reason)
        elif sent.token is not None:
            unsigned = core.signer.unsign(sent.token)
            if unsigned is None:
                logger.info(
                    "session rejected: %s is malformed or its signature does not verify",
                    core.transport.describe(via),
                    extra=lifecycle("rejected", None, None, "bad_signature"),
                )
                core.events.emit("rejected", scope, None, None, "bad_signature")
            else:
                model = await self._load_key(unsigned.session_id, unsigned.key)
                if model is not None:
                    self.stale_key = unsigned.stale_key
        if model is None:
            model = core.model_cls()
            self.stored_data = model.model_dump(mode="json")
        object.__setattr__(model, "_request_session", self)
        self.model = model
        self._loaded_values = tuple(model.__dict__.values())
        return model

    async def _load_key(self, session_id: str, key: str) -> SessionModel | None:
        """Load the live session stored under ``key`` into this request session; ``None`` (and a log line) if none."""
        core = self.core
        try:
            stored = await core.gateway.load(key)
        except CorruptRecordError as exc:
            extra = lifecycle("rejected", key, None, "undecodable")
            logger.warning("session rejected: %s: %s", core.signer.log_id(session_id), str(exc), extra=extra)
            core.events.emit("rejected", self.scope, key, None, "undecodable")
            return None
        if stored is None:
            logger.info(
                "session rejected: %s is unknown or expired in the store",
                core.signer.log_id(session_id),
                extra=lifecycle("rejected", key, None, "unknown_id"),
            )
            core.events.emit("rejected", self.scope, key, None, "unknown_id")
            return None
        data = stored.data
        expired = core.policy.expiry_reason(data)
        if expired:
            extra = lifecycle("expired", key, stored.user_id, expired)
            logger.info("session expired: %s (%s timeout)", core.signer.log_id(session_id), expired, extra=extra)
            core.events.emit("expired", self.scope, key, stored.user_id, expired)
            return None
        try:
            data, model = core.policy.decode(data, key)
        except DecryptionError as exc:
            extra = lifecycle("rejected", key, stored.user_id, "undecodable")
            logger.warning("session rejected: %s: %s", core.signer.log_id(session_id), str(exc), extra=extra)
            core.events.emit("rejected", self.scope, key, stored.user_id, "undecodable")
            return None
        except ValidationError as exc:
            logger.warning(
                "session rejected: %s no longer validates against %s (%d errors); starting a new session",
                core.signer.log_id(session_id),
                core.model_cls.__name__,
                exc.error_count(),
                extra=lifecycle("rejected", key, stored.user_id, "invalid_model"),
            )
            core.events.emit("rejected", self.scope, key, stored.user_id, "invalid_model")
            return None
        core.telemetry.session("loaded")
        self.session_id = session_id
        self.key = key
        self.stored_data = data
        self.stored_user_id = stored.user_id
        self.version = stored.version
        self.meta = data  # the metadata names in it; model fields are read from the model, never from here
        return model

    # What the model's methods ask for (the `SessionBinding` of `fastapi_sessions.model`).

    @property
    def handle(self) -> str | None:
        return self.key

    @property
    def created(self) -> float | None:
        created: float | None = self.meta.get(CREATED)
        return created

    def regenerate(self, *, rotate_csrf: bool = False, reason: str = "regenerate") -> None:
        # After destroy(), a login (logout then login as another user) starts a new session; the
        # destroyed one stays dead either way.
        self._destroy = False
        self._regenerate = True
        self._regenerate_reason = reason
        self._rotate_csrf = self._rotate_csrf or rotate_csrf

    def destroy(self) -> None:
        self._destroy = True
        self._destroyed = True
        self._regenerate = False
        self.meta = {}
        self._meta_changes = {}

    def now_datetime(self) -> datetime:
        return self.core.policy.now_datetime()

    def set_expiry(self, max_age: float | None, idle_timeout: float | None, persistent: bool | None) -> None:
        self._set_meta(EXPIRY, self.core.policy.expiry_value(max_age, idle_timeout, persistent))

    @property
    def lifetime(self) -> tuple[float, float | None, bool]:
        lifetime = self.core.policy.lifetime(self.meta)
        return lifetime.max_age, lifetime.idle_timeout, lifetime.persistent

    def _set_meta(self, name: str, value: Any) -> None:
        if self.meta is self.stored_data:
            self.meta = dict(self.meta)  # the loaded record stays as loaded: the base of a merge
        self.meta[name] = value
        self._meta_changes[name] = value

    def add_flash(self, flash: FlashMessage) -> None:
        if self._destroy:
            # A message for the page after a logout goes in a new session; the destroyed one stays dead.
            self._destroy = False
            self._regenerate = True
        self._set_meta(FLASH, [*self.meta.get(FLASH, []), list(flash)])

    def pop_flashes(self, category: str | None) -> list[FlashMessage]:
        queued = [FlashMessage(*item) for item in self.meta.get(FLASH, [])]
        taken = [flash for flash in queued if category is None or flash.category == category]
        if taken:
            kept = [list(flash) for flash in queued if flash not in taken]
            self._set_meta(FLASH, kept)
        return taken

    def csrf_token(self) -> str:
        token = self.meta.get(CSRF)
        if not isinstance(token, str) or (self._rotate_csrf and CSRF not in self._meta_changes):
            token = secrets.token_urlsafe(32)
            self._set_meta(CSRF, token)
        return token

    def expected_csrf_token(self) -> str | None:
        """The token a request must send to pass `CsrfGuard`, without creating one."""
        token = self.meta.get(CSRF)
        return token if isinstance(token, str) else None

    # Reading the store again.

    async def reload(self) -> bool:
        """Read the session from the store again, dropping unsaved changes; whether it is still live.

        A session deleted, regenerated elsewhere or expired meanwhile leaves the model at its
        defaults, as a new anonymous session.
        """
        model = self.model
        assert model is not None
        live = None
        if self.key is not None and self.session_id is not None:
            live = await self._load_key(self.session_id, self.key)
        if live is None:
            live = self.core.model_cls()
            self.key = self.session_id = self.stored_user_id = None
            self.stored_data = live.model_dump(mode="json")
            self.meta = {}
            self.version = 0
        for name in type(model).model_fields:
            object.__setattr__(model, name, getattr(live, name))
        self._loaded_values = tuple(model.__dict__.values())
        self._meta_changes = {}
        self._regenerate = self._rotate_csrf = self._destroy = False
        return self.key is not None

    async def still_live(self) -> bool:
        """Whether the stored session this request loaded still loads (not deleted, regenerated or expired)."""
        core = self.core
        if self.key is None:
            return True  # nothing stored, nothing anyone could have revoked
        try:
            stored = await core.gateway.load(self.key)
        except CorruptRecordError:
            return False
        return stored is not None and core.policy.expiry_reason(stored.data) is None

    # Committing: decide (`plan_commit`), then do.

    async def commit(self) -> list[tuple[bytes, bytes]]:
        """Save what changed and return the headers the response needs (``Set-Cookie``, or the token header)."""
        if self.model is None:
            return _NO_HEADERS
        planned = self._plan(self.core.policy.clock())
        if planned[0].action is Action.NOTHING:  # most requests: the `_apply` of nothing, without its coroutine
            self.core.telemetry.commit("unchanged")
            headers = _NO_HEADERS
        else:
            headers = await self._apply(*planned)
        if self._saved_headers:
            headers = [*self._saved_headers, *headers]
        return headers

    async def save(self) -> None:
        """Write what changed now, rather than when the response starts; the commit then writes only later changes."""
        assert self.model is not None
        now = self.core.policy.clock()
        plan, current, _, _ = planned = self._plan(now)
        if self.scope["type"] == "websocket" and plan.action in (Action.CREATE, Action.REPLACE):
            raise SessionError(
                "a WebSocket cannot set a cookie: create the session, log in or regenerate over HTTP, "
                "and save only changes to a stored session from a WebSocket"
            )
        headers = await self._apply(*planned)
        if self.scope["type"] == "http":
            self._saved_headers = [*self._saved_headers, *headers]
        if current is None:
            current = self.model.model_dump(mode="json")
        # What is stored now is the base of the next save or commit.
        if self._destroy:
            self.stored_data = self.model.model_dump(mode="json")
            self.meta = {}
        else:
            meta = {name: value for name, value in self.meta.items() if is_metadata(name)}
            if plan.action is not Action.NOTHING:
                meta[SEEN] = now
            self.meta = meta
            self.stored_data = {**current, **meta}
        self._loaded_values = tuple(self.model.__dict__.values())
        self._meta_changes = {}
        self._regenerate = self._rotate_csrf = self._destroy = False

    def _check_inside_path(self, plan: CommitPlan) -> None:
        if self._outside_path and plan.action is Action.CREATE:
            path = self.core.settings.path
            raise SessionConfigError(
                f"a session started at {printable(browser_path(self.scope))}, outside the cookie's path "
                f"SESSION_PATH={path}: the browser would never send its cookie back. Serve this route "
                f"under {path}, or set SESSION_PATH to a path that covers it (such as /)"
            )

    def _plan(self, now: float) -> tuple[CommitPlan, dict[str, Any] | None, dict[str, Patch], float]:
        """What the commit must do; with the model dumped to JSON (``None`` when nothing is to be written)."""
        model = self.model
        assert model is not None
        policy = self.core.policy
        current: dict[str, Any] | None = None
        changes: dict[str, Patch] = {}
        if self._destroy:
            facts = CommitFacts(stored=self.key is not None, cookie_present=self.cookie_present, destroy=True)
            return plan_commit(facts), {}, changes, now
        untouched = self._untouched()
        if not untouched:
            current = model.model_dump(mode="json")
            stored = self.stored_data
            schemas = self.core.field_schemas
            for name, value in current.items():
                before = stored.get(name, MISSING)
                if before != value and (patch := diff(before, value, schemas.get(name, PLAIN))) is not None:
                    changes[name] = patch
        touch_due = policy.touch_due(self.meta.get(SEEN, 0), now, policy.lifetime(self.meta))
        if untouched and not (touch_due or self._meta_changes or self._regenerate or self.stale_key):
            # Most requests: nothing changed, nothing asked for. `plan_commit` says NOTHING to these
            # facts whatever the rest (tests/test_commit_plan.py holds it to that).
            return NOTHING, None, changes, now
        privileged = model.privileged_fields
        facts = CommitFacts(
            stored=self.key is not None,
            cookie_present=self.cookie_present,
            regenerate=self._regenerate,
            rotate_csrf=self._rotate_csrf,
            privilege_changed=bool(privileged) and not privileged.isdisjoint(changes),
            changed=bool(changes or self._meta_changes),
            touch_due=touch_due,
            lifetime_changed=EXPIRY in self._meta_changes,
            stale_cookie=self.stale_key,
        )
        plan = plan_commit(facts)
        self._check_inside_path(plan)
        if current is None and plan.action is not Action.NOTHING:
            current = model.model_dump(mode="json")
        return plan, current, changes, now

    def _untouched(self) -> bool:
        """Whether every field still holds the very object `load` gave it, of a type that cannot change in place.

        Then nothing changed, and the commit needs no dump of the model to find out.
        """
        model = self.model
        assert model is not None
        loaded = self._loaded_values
        values = model.__dict__
        if len(values) != len(loaded) or model.__pydantic_extra__:
            return False
        for value, before in zip(values.values(), loaded, strict=True):
            if value is not before or (type(value) not in _IMMUTABLE and not isinstance(value, enum.Enum)):
                return False
        return True

    async def _apply(
        self, plan: CommitPlan, current: dict[str, Any] | None, changes: dict[str, Patch], now: float
    ) -> list[tuple[bytes, bytes]]:
        action = plan.action
        telemetry = self.core.telemetry
        if action is Action.NOTHING:
            telemetry.commit("unchanged")
            return _NO_HEADERS
        if action is Action.DESTROY:
            telemetry.commit("written" if self.key is not None else "unchanged")
            return await self._delete(clear_cookie=plan.clear_cookie)
        assert current is not None  # `_plan` dumps the model for every write
        if action is Action.CREATE:
            return await self._store_new(current, now, created=now)
        if action is Action.REPLACE:
            if plan.rotate_csrf and CSRF in self.meta and CSRF not in self._meta_changes:
                self._set_meta(CSRF, secrets.token_urlsafe(32))
            return await self._store_new(current, now, created=self.meta.get(CREATED, now))
        if action is Action.UPDATE:
            written = await self._update(current, changes, now)
            telemetry.commit("written" if written else "dropped")
            if not (written and plan.resign_cookie):
                return _NO_HEADERS
        else:
            telemetry.commit("unchanged")
        # Re-signed with the current key (an update of a stale cookie's session, or REFRESH_COOKIE).
        return [self._cookie_header(self.meta.get(CREATED, now), now, minimum=0)]

    async def _delete(self, *, clear_cookie: bool) -> list[tuple[bytes, bytes]]:
        core = self.core
        if self.key is not None:
            await core.gateway.delete(self.key, user_id=self.stored_user_id)
            extra = lifecycle("destroyed", self.key, self.stored_user_id, "logout")
            logger.info("session destroyed: %s", core.signer.log_id(self.session_id or ""), extra=extra)
            core.events.emit("destroyed", self.scope, self.key, self.stored_user_id, "logout")
            self.key = None
        return [core.transport.clear(self.token_via, https=self.https)] if clear_cookie else _NO_HEADERS

    async def _update(self, current: dict[str, Any], changes: dict[str, Patch], now: float) -> bool:
        """Write the changes, merged into what other requests wrote meanwhile; whether the session was still there."""
        assert self.key is not None
        core = self.core
        stored = self.stored_data
        # Fields the model no longer has (it changed since the session was stored) go with any write.
        removed = [name for name in stored if name not in current and not is_metadata(name)]
        patches = dict(changes)
        for name, value in self._meta_changes.items():
            patch = diff(stored.get(name, [] if name == FLASH else MISSING), value)  # no queue is an empty one
            if patch is not None:
                patches[name] = patch
        update = {name: patch.ours for name, patch in patches.items()}
        update[SEEN] = now
        strict = core.settings.strict_updates
        # Replacing whole values needs no merge: the last writer wins, one blind write. Anything
        # finer (a dict key, list items, set members, a counter), or a strict check, is written only
        # over the version this request loaded, and merged into the newer one otherwise.
        merging = strict or not all(type(patch) is Replace for patch in patches.values())
        if merging:
            # The merging commits of one session in this process queue for it rather than retry
            # against each other; another process's commits are caught by the store's version check.
            async with core.commit_locks.hold(self.key):
                result, expected = await self._write(patches, update, removed, self.version, now)
        else:
            result, expected = await self._write(patches, update, removed, None, now)
        if result is UpdateResult.MISSING:
            # Logged out or regenerated by another request meanwhile: that decision stands. No
            # Set-Cookie: the request that deleted it already answered for the cookie, and a login
            # may have set a new one since.
            logger.info(
                "session changes dropped: %s was deleted by another request", core.signer.log_id(self.session_id or "")
            )
            return False
        if expected is not None:
            self.version = expected + 1  # written over that version: the store's is the next one
        return True

    async def _write(
        self, patches: dict[str, Patch], update: dict[str, Any], removed: list[str], expected: int | None, now: float
    ) -> tuple[UpdateResult, int | None]:
        """Write ``update``, over version ``expected`` if given, replaying ``patches`` on each newer version found."""
        assert self.key is not None
        core = self.core
        policy = core.policy
        strict = core.settings.strict_updates
        base = self.stored_data
        for attempt in range(_MERGE_ATTEMPTS):
            if attempt > 1:
                # Lost twice in a row: the session is busy in other processes too. A random pause,
                # longer each time, lets their writers finish, so that no request loses every round.
                await asyncio.sleep(random.uniform(0, _MERGE_BACKOFF * 2 ** min(attempt, 6)))
            policy.check_size({**base, **update})
            result = await core.gateway.update(
                self.key,
                policy.encode(update, self.key),
                removed=removed,
                ttl=policy.ttl(self.meta.get(CREATED, now), now, policy.lifetime(self.meta)),
                expected_version=expected,
            )
            if result is not UpdateResult.CONFLICT:
                return result, expected
            newer = await self._newer_record()
            if newer is None:
                return UpdateResult.MISSING, expected
            base, expected = newer
            update, conflicts = _rebase(patches, base, now)
            if strict and conflicts:
                raise SessionConflictError(
                    f"another request changed {', '.join(map(repr, sorted(conflicts)))} of this session first; retry"
                )
        raise SessionConflictError(
            f"the session changed under {_MERGE_ATTEMPTS} commits of this request in a row; retry"
        )

    async def _newer_record(self) -> tuple[dict[str, Any], int] | None:
        """The record as another request left it, in clear, with its version; ``None`` if it is gone or unreadable."""
        assert self.key is not None
        core = self.core
        try:
            stored = await core.gateway.load(self.key)
            if stored is None:
                return None
            return core.policy.decrypt(stored.data, self.key), stored.version
        except (CorruptRecordError, DecryptionError) as exc:
            logger.warning(
                "session changes dropped: %s became unreadable: %s", core.signer.log_id(self.session_id or ""), exc
            )
            return None

    async def _store_new(self, current: dict[str, Any], now: float, *, created: float) -> list[tuple[bytes, bytes]]:
        core = self.core
        policy = core.policy
        meta = {name: value for name, value in self.meta.items() if is_metadata(name)}
        meta.update(self._meta_changes)
        meta[CREATED] = created
        meta[SEEN] = now
        agent = _header(self.scope, b"user-agent")
        meta[AGENT] = agent[:_MAX_AGENT_LENGTH] if agent else None
        client = self.scope.get("client")
        meta[IP] = client[0] if client else None
        data = {**current, **meta}
        policy.check_size(data)
        user_id = current.get("user_id") if isinstance(current.get("user_id"), str) else None
        if user_id is not None and user_id != self.stored_user_id:
            await core.users.make_room(user_id, replacing=self.key)
        session_id = new_session_id()
        key = core.signer.store_key(session_id)
        ttl = policy.ttl(created, now, policy.lifetime(meta))
        encoded = policy.encode(data, key)
        reason = self._regenerate_reason if self._regenerate else None
        if self.key is None:
            await core.gateway.create(key, encoded, ttl=ttl, user_id=user_id)
            logger.info(
                "session created: %s", core.signer.log_id(session_id), extra=lifecycle("created", key, user_id, reason)
            )
            core.events.emit("created", self.scope, key, user_id, reason)
        else:
            replaced = await core.gateway.replace(
                self.key, key, encoded, ttl=ttl, user_id=user_id, old_user_id=self.stored_user_id
            )
            if not replaced:
                logger.info(
                    "session regeneration dropped: %s was deleted by another request",
                    core.signer.log_id(self.session_id or ""),
                )
                core.telemetry.commit("dropped")
                return _NO_HEADERS
            old_id = core.signer.log_id(self.session_id or "")
            if self._destroyed:
                # Logged out, then given a new session in the same request (a login as someone else, a
                # flash message for the next page): to an audit, one session ended and another began.
                core.events.emit("destroyed", self.scope, self.key, self.stored_user_id, "logout")
                core.events.emit("created", self.scope, key, user_id, reason)
                extra = lifecycle("created", key, user_id, reason)
            else:
                reason = reason or "privilege_change"
                core.events.emit("regenerated", self.scope, key, user_id, reason, previous_handle=self.key)
                extra = lifecycle("regenerated", key, user_id, reason)
            logger.info("session regenerated: %s -> %s", old_id, core.signer.log_id(session_id), extra=extra)
        core.telemetry.commit("written")
        self.session_id, self.key, self.stored_user_id = session_id, key, user_id
        return [self._cookie_header(created, now, minimum=1)]

    def _cookie_header(self, created: float, now: float, *, minimum: int) -> tuple[bytes, bytes]:
        assert self.session_id is not None
        core = self.core
        lifetime = core.policy.lifetime(self.meta)
        max_age = max(core.policy.cookie_max_age(created, now, lifetime), minimum)
        value = core.signer.sign(self.session_id)
        return core.transport.issue(self.token_via, value, max_age, persistent=lifetime.persistent, https=self.https)


_warned_outside_path: "weakref.WeakSet[SessionCore]" = weakref.WeakSet()


def _warn_outside_path_once(core: SessionCore, scope: Scope) -> None:
    if core not in _warned_outside_path:
        _warned_outside_path.add(core)
        logger.warning(
            "a request for %s is outside SESSION_PATH=%s: requests there have no session (the browser "
            "sends no cookie there); logged once",
            printable(browser_path(scope)),
            core.settings.path,
        )


def _rebase(patches: dict[str, Patch], theirs: dict[str, Any], now: float) -> tuple[dict[str, Any], list[str]]:
    """The request's changes replayed on ``theirs``; and the model fields both changed (true conflicts)."""
    update: dict[str, Any] = {}
    conflicts = []
    for name, patch in patches.items():
        value, conflict = patch.apply(theirs.get(name, MISSING))
        update[name] = value
        if conflict and not is_metadata(name):
            conflicts.append(name)
    update[SEEN] = now
    return update, conflicts


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
