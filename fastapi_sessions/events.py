"""The lifecycle events a `SessionManager` hands its listeners: one frozen dataclass per kind.

Register a listener with `SessionManager.on` (a decorator) or `SessionManager.add_listener`; it gets
the event once the store write it reports is done, after the response has been sent.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

__all__ = [
    "EventKind",
    "RegenerationReason",
    "RejectionReason",
    "RevocationReason",
    "SessionCreated",
    "SessionDestroyed",
    "SessionEvent",
    "SessionExpired",
    "SessionRegenerated",
    "SessionRejected",
    "SessionRevoked",
]

EventKind = Literal["created", "regenerated", "destroyed", "expired", "revoked", "rejected"]
"""The name of each kind of event, as `SessionManager.on` takes it."""

RegenerationReason = Literal["login", "factor", "step_up", "privilege_change", "regenerate"]
"""Why a session got a new ID: `AuthSession.login`, `AuthSession.complete_factor`,
`AuthSession.reauthenticate`, a change of a privileged field, `SessionModel.regenerate`."""

RejectionReason = Literal["bad_signature", "unknown_id", "undecodable", "invalid_model", "several_cookies"]
"""Why a cookie named no usable session."""

RevocationReason = Literal["revoke_session", "revoke_all_sessions", "limit"]
"""Which per-user control ended a session: `SessionManager.revoke_session`,
`SessionManager.revoke_all_sessions`, or the eviction of the oldest at ``SESSION_MAX_SESSIONS_PER_USER``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEvent:
    """What every event carries. The request fields are ``None`` when no request caused it (a script).

    Attributes:
        handle: The session's store key, as in `SessionInfo.handle` (never the session ID), or
            ``None`` when no session was found.
        user_id: The session's user, or ``None``.
        reason: Why, in the words of the event's kind (each subclass narrows it).
        time: When, by the manager's clock (seconds since the epoch).
        method: The request's HTTP method (``None`` for a WebSocket).
        path: The request's path.
        client_ip: The client's address as the server saw it.
        user_agent: The request's ``User-Agent``.
    """

    kind: ClassVar[EventKind]

    handle: str | None
    user_id: str | None
    reason: str | None
    time: float
    method: str | None = None
    path: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None

    @property
    def at(self) -> datetime:
        """`time` as an aware `datetime` in UTC."""
        return datetime.fromtimestamp(self.time, UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(SessionEvent):
    """A new session was stored. ``reason`` is the login (or other regeneration) that made it, if any."""

    kind: ClassVar[EventKind] = "created"
    handle: str
    reason: RegenerationReason | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRegenerated(SessionEvent):
    """A stored session moved to a new ID; ``handle`` is the new one and ``previous_handle`` the old."""

    kind: ClassVar[EventKind] = "regenerated"
    handle: str
    reason: RegenerationReason
    previous_handle: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDestroyed(SessionEvent):
    """The application ended the session (`SessionModel.destroy`, `AuthSession.logout`)."""

    kind: ClassVar[EventKind] = "destroyed"
    handle: str
    reason: Literal["logout"] = "logout"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionExpired(SessionEvent):
    """A request brought the cookie of a session past its idle or absolute timeout."""

    kind: ClassVar[EventKind] = "expired"
    handle: str
    reason: Literal["idle", "absolute"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRevoked(SessionEvent):
    """Per-user control ended sessions of ``user_id``.

    Attributes:
        count: How many sessions ended. `SessionManager.revoke_all_sessions` is one store operation
            that reports a count, not keys: its event has ``handle=None`` and the count.
    """

    kind: ClassVar[EventKind] = "revoked"
    reason: RevocationReason
    count: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRejected(SessionEvent):
    """A request's cookie named no usable session; it got a new anonymous one."""

    kind: ClassVar[EventKind] = "rejected"
    reason: RejectionReason
