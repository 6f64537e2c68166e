"""`SessionModel` and `AuthSession`: the typed session data applications declare."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

from fastapi_sessions.exceptions import SessionNotBoundError

__all__ = ["AuthSession", "FlashMessage", "SessionBinding", "SessionModel"]


class FlashMessage(NamedTuple):
    """A one-time message stored in the session until it is read."""

    category: str
    message: str


class SessionBinding(Protocol):
    """What a model loaded by a request asks of that request's session (the library's `RequestSession`)."""

    @property
    def handle(self) -> str | None:
        """The session's store key, or ``None`` until it is stored."""

    @property
    def created(self) -> float | None:
        """When the session was first stored (seconds since the epoch), or ``None``."""

    def regenerate(self, *, rotate_csrf: bool = False, reason: str = "regenerate") -> None:
        """Issue a new ID when the response is sent; ``reason`` is told to the listeners (`RegenerationReason`)."""

    def destroy(self) -> None:
        """Delete the session when the response is sent."""

    def now_datetime(self) -> datetime:
        """The session clock's time."""

    def set_expiry(self, max_age: float | None, idle_timeout: float | None, persistent: bool | None) -> None:
        """Give the session a lifetime of its own (``None`` for a setting's value)."""

    @property
    def lifetime(self) -> tuple[float, float | None, bool]:
        """The session's absolute lifetime, idle timeout and cookie persistence in effect."""

    def add_flash(self, flash: "FlashMessage") -> None:
        """Queue a flash message."""

    def pop_flashes(self, category: str | None) -> "list[FlashMessage]":
        """Take the queued flash messages (of one category)."""

    def csrf_token(self) -> str:
        """The session's CSRF token, made on first use."""

    async def save(self) -> None:
        """Write what changed now."""

    async def reload(self) -> bool:
        """Read the session from the store again; whether it is still live."""

    async def still_live(self) -> bool:
        """Whether the stored session still loads."""


class SessionModel(BaseModel):
    """Base class of session data: a Pydantic model whose fields persist between requests.

    Declare fields with defaults; a new session starts from them. The data is stored as JSON by
    Pydantic's own serialization, so every field must round-trip through JSON.

    Changes are saved when the response starts, including changes made in place
    (``session.items.append(3)``). Only the fields that changed are written.
    """

    model_config = ConfigDict(validate_assignment=True, extra="ignore")

    privileged_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields whose change is a privilege change: the session gets a new ID when one of them changes."""

    # A slot rather than a Pydantic private attribute: validating a model with private attributes
    # costs twice as much, and every request that uses its session validates one.
    __slots__ = ("_request_session",)

    def _bound(self) -> SessionBinding:
        bound: SessionBinding | None = getattr(self, "_request_session", None)
        if bound is None:
            raise SessionNotBoundError(
                f"this {type(self).__name__} is not bound to a request: get it from a route parameter such as "
                "Annotated[Model, Depends(sessions)], and change it before the response is sent"
            )
        return bound

    def regenerate(self) -> None:
        """Give the session a new ID when the response is sent; the data is kept and the old ID dies."""
        self._bound().regenerate()

    def destroy(self) -> None:
        """Delete the session: the stored record goes, the cookie is cleared, the data returns to defaults."""
        bound = self._bound()
        bound.destroy()
        fresh = type(self)()
        for name in type(self).model_fields:
            object.__setattr__(self, name, getattr(fresh, name))
        object.__setattr__(self, "__pydantic_fields_set__", set())

    def set_expiry(
        self,
        max_age: timedelta | float | None = None,
        *,
        idle_timeout: timedelta | float | None = None,
        persistent: bool | None = None,
    ) -> None:
        """Give this session a lifetime of its own, e.g. 30 days for "remember me" at login.

        It is kept with the session, through regeneration and login, until changed again; the store
        keeps the session for as long, and the cookie's Max-Age follows. Each value left ``None`` is
        the setting's (``SESSION_MAX_AGE``, ``SESSION_IDLE_TIMEOUT``, ``SESSION_PERSISTENT``); with
        every value ``None`` the session returns to the settings'. Lifetimes over
        ``SESSION_MAX_EXPIRY`` are capped to it. The absolute lifetime still counts from the
        session's creation.

        Args:
            max_age: Absolute lifetime, as a `timedelta` or seconds.
            idle_timeout: Time without activity that ends the session.
            persistent: ``True`` for a cookie that survives a browser restart, ``False`` for a
                browser-session cookie (a login without "remember me" on a shared computer).

        Raises:
            ValueError: ``max_age`` or ``idle_timeout`` is not a positive duration.
        """
        self._bound().set_expiry(_seconds(max_age), _seconds(idle_timeout), persistent)

    @property
    def expires_at(self) -> datetime:
        """When this session ends at the latest: its creation (now, if not stored yet) plus its absolute lifetime."""
        bound = self._bound()
        created = bound.created
        start = bound.now_datetime().timestamp() if created is None else created
        return datetime.fromtimestamp(start + bound.lifetime[0], UTC)

    async def save(self) -> None:
        """Write what changed now, instead of when the response starts (express-session's ``save``).

        For long responses (a stream that should not hold its changes back) and WebSocket routes,
        whose changes are otherwise not saved. Changes merge with other requests' as at commit, and
        the commit at the response's start writes only what changed after this. Over HTTP, a cookie
        the save sets (a new session, a login) goes out with the response.

        Raises:
            SessionError: on a WebSocket, the save would need to set a cookie (a new session, a
                login, a regeneration): do those over HTTP.
            StoreUnavailableError: the store could not be reached.
        """
        await self._bound().save()

    async def reload(self) -> bool:
        """Read this session from the store again, dropping unsaved changes (express-session's ``reload``).

        Returns whether the session is still live. One deleted (logout, revocation), regenerated by
        another request, or expired meanwhile leaves this model at its defaults: a new anonymous
        session.
        """
        return await self._bound().reload()

    async def still_live(self) -> bool:
        """Whether the stored session this model was loaded from still loads, changing nothing.

        ``False`` once it was deleted (logout, revocation), regenerated by another request, or
        expired; ``True`` for a session that was never stored. `SessionManager.watch` asks this
        of a WebSocket's session at an interval.
        """
        return await self._bound().still_live()

    def flash(self, message: str, category: str = "info") -> None:
        """Queue a one-time message, shown by `pop_flashes` on a later request."""
        self._bound().add_flash(FlashMessage(category, message))

    def pop_flashes(self, category: str | None = None) -> list[FlashMessage]:
        """Return the queued flash messages (of one ``category``, if given) and remove them from the session."""
        return self._bound().pop_flashes(category)

    @property
    def csrf_token(self) -> str:
        """This session's CSRF token, for forms and for the ``X-CSRF-Token`` header."""
        return self._bound().csrf_token()

    @property
    def handle(self) -> str | None:
        """An opaque handle naming this session in `SessionManager.list_sessions`; ``None`` until stored."""
        return self._bound().handle

    @property
    def created_at(self) -> datetime | None:
        """When this session was first stored, or ``None`` for a session not stored yet."""
        created = self._bound().created
        return datetime.fromtimestamp(created, UTC) if created is not None else None


def _seconds(value: timedelta | float | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


ModelT = TypeVar("ModelT", bound=SessionModel)
"""The session model type of a `SessionManager`, its guards and its dependency."""


def _sorted_roles(roles: set[str]) -> list[str]:
    return sorted(roles)


class AuthSession(SessionModel):
    """A session that can hold a logged-in user.

    Attributes:
        user_id: The logged-in user, or ``None``.
        roles: The user's roles, checked by `SessionManager.require_roles`.
        authenticated_at: When the user last proved their identity (used by step-up guards).
        pending_factors: Authentication steps still to pass (e.g. ``{"totp"}``): a session with
            pending factors is partly logged in and does not pass `SessionManager.require_auth`.
    """

    privileged_fields: ClassVar[frozenset[str]] = frozenset({"user_id", "roles", "pending_factors"})

    user_id: str | None = None
    roles: Annotated[set[str], PlainSerializer(_sorted_roles, when_used="json")] = set()
    authenticated_at: datetime | None = None
    pending_factors: Annotated[set[str], PlainSerializer(_sorted_roles, when_used="json")] = set()

    @property
    def is_authenticated(self) -> bool:
        """A user is logged in and has no authentication step pending."""
        return self.user_id is not None and not self.pending_factors

    def login(self, user_id: str, roles: Iterable[str] = (), *, pending: Iterable[str] = ()) -> None:
        """Log ``user_id`` in: a new session ID is issued, the data is kept, the old ID dies.

        Args:
            user_id: The user's ID.
            roles: The user's roles.
            pending: Factors still to pass before the login is complete (e.g. ``["totp"]``); call
                `complete_factor` for each.
        """
        bound = self._bound()
        self.user_id = str(user_id)
        self.roles = set(roles)
        self.pending_factors = set(pending)
        self.authenticated_at = bound.now_datetime()
        bound.regenerate(rotate_csrf=True, reason="login")

    def complete_factor(self, factor: str) -> None:
        """Mark a pending authentication factor as passed; the session gets a new ID."""
        bound = self._bound()
        self.pending_factors = self.pending_factors - {factor}
        self.authenticated_at = bound.now_datetime()
        bound.regenerate(rotate_csrf=True, reason="factor")

    def reauthenticate(self) -> None:
        """Record that the user just proved their identity again (for step-up guards); the session gets a new ID.

        A new ID on re-authentication too, as on login (ASVS 5.0 V7.2.4): a token captured before
        the step-up does not carry it.
        """
        bound = self._bound()
        self.authenticated_at = bound.now_datetime()
        bound.regenerate(reason="step_up")

    def logout(self) -> None:
        """Log out: the stored session is deleted and the cookie cleared."""
        self.destroy()

    def auth_age(self, now: datetime) -> float | None:
        """Seconds since `authenticated_at`, or ``None`` if never authenticated."""
        if self.authenticated_at is None:
            return None
        return (now - self.authenticated_at).total_seconds()
