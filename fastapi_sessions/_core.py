"""`SessionCore`: the small set of parts a request's session, the guards and the middleware work with."""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from fastapi_sessions._events import EventHub
from fastapi_sessions._gateway import StoreGateway
from fastapi_sessions._locks import KeyLocks
from fastapi_sessions._merge import Schema, schema_of_model
from fastapi_sessions._policy import SessionPolicy
from fastapi_sessions._registry import UserSessions
from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions._transport import SessionTransport
from fastapi_sessions.model import SessionModel
from fastapi_sessions.settings import SessionSettings, environment_settings
from fastapi_sessions.signing import CookieSigner
from fastapi_sessions.stores import SessionStore, store_from_url

__all__ = ["SessionCore", "SettingsSource"]

SettingsSource: TypeAlias = SessionSettings | Callable[[], SessionSettings]
"""Settings, or a function that returns them when the app starts (``lambda: SessionSettings.load(...)``)."""

# The parts that need the settings, so are built by `SessionCore.build`, not when the core is made.
_BUILT_PARTS = frozenset(
    {"settings", "policy", "gateway", "signer", "transport", "users", "scoped_path"},
)


class SessionCore:
    """The parts of one `SessionManager`, handed to what serves each request.

    Made in two steps, so that a module creating a manager (and decorating routes with its guards)
    imports without any ``SESSION_*`` variable: what the model alone decides when the manager is
    created; the parts that need the settings and the store by `build`, which the app's startup
    runs, or the first read of any of those parts if the app never started. Until then the
    settings and the store given (`configure`) can still change.

    Attributes:
        model_cls: The application's session model.
        scope_key: Where a request's session lives in its ASGI scope.
        field_schemas: How each model field merges with a concurrent change (`schema_of_model`).
        scheme_name: The OpenAPI security scheme name asked for, or ``None`` for the default.
        events: The lifecycle listeners.
        telemetry: Spans and metrics.
        commit_locks: The lock a merging commit holds on its session key in this process.
        settings: The settings (built).
        policy: Time, size and encoding rules (built).
        gateway: The store, under its deadline (built).
        signer: Signs and verifies cookie values (built).
        transport: Finds the session token in a request (cookie or header) and writes the answer (built).
        users: Per-user session control (built).

    Args:
        model_cls: The application's session model.
        scope_key: Where a request's session lives in its ASGI scope.
        settings: The settings, or a function `build` calls for them; read from ``SESSION_*``
            variables by `build` when ``None``.
        store: The store; built from ``settings.store_url`` by `build` when ``None``.
        clock: Returns the current time in seconds.
        scheme_name: The OpenAPI security scheme name, or ``None`` for one derived from the cookie name.
        events: The lifecycle listeners.
        telemetry: Spans and metrics.
    """

    __slots__ = (
        "__weakref__",  # a core is looked up in weak sets (the path mismatch, logged once per manager)
        "_built",
        "_clock",
        "_settings",
        "_store",
        "commit_locks",
        "events",
        "field_schemas",
        "gateway",
        "model_cls",
        "policy",
        "scheme_name",
        "scope_key",
        "scoped_path",
        "settings",
        "signer",
        "telemetry",
        "transport",
        "users",
    )

    model_cls: type[SessionModel]
    scope_key: str
    field_schemas: Mapping[str, Schema]
    events: EventHub
    telemetry: Telemetry
    commit_locks: KeyLocks
    scheme_name: str | None
    settings: SessionSettings
    scoped_path: bool
    """``SESSION_PATH`` is not ``/``: each request's path is checked against it."""
    policy: SessionPolicy
    gateway: StoreGateway
    signer: CookieSigner
    transport: SessionTransport
    users: UserSessions

    def __init__(
        self,
        model_cls: type[SessionModel],
        *,
        scope_key: str,
        settings: SettingsSource | None,
        store: SessionStore | None,
        clock: Callable[[], float],
        scheme_name: str | None = None,
        events: EventHub,
        telemetry: Telemetry,
    ) -> None:
        self.model_cls = model_cls
        self.scope_key = scope_key
        self.field_schemas = schema_of_model(model_cls)
        self.scheme_name = scheme_name
        self.events = events
        self.telemetry = telemetry
        self.commit_locks = KeyLocks()
        self._settings = settings
        self._store = store
        self._clock = clock
        self._built = False

    @property
    def built(self) -> bool:
        """Whether `build` has run (and the parts that need the settings exist)."""
        return self._built

    def build(self) -> None:
        """Read the settings, build the store and the parts that need them; once.

        Raises:
            SessionConfigError: a setting is missing or invalid; the message names the variable.
            ImportError: the store's driver is missing; the message names the extra to install.
        """
        if self.built:
            return
        given = self._settings
        settings = SessionSettings.load() if given is None else given if isinstance(given, SessionSettings) else given()
        store = self._store if self._store is not None else store_from_url(settings.store_url)
        policy = SessionPolicy(self.model_cls, settings, self._clock)
        gateway = StoreGateway(store, settings.store_timeout, self.telemetry)
        signer = CookieSigner(
            settings.secret_key.get_secret_value(),
            [key.get_secret_value() for key in settings.secret_key_fallbacks],
            namespace=settings.session_namespace,
        )
        users = UserSessions(
            gateway,
            policy,
            limit=settings.max_sessions_per_user,
            limit_policy=settings.limit_policy,
            events=self.events,
        )
        # Assigned only once everything above succeeded: a failed build leaves the core unbuilt.
        self.settings = settings
        self.scoped_path = settings.path != "/"
        self.policy = policy
        self.gateway = gateway
        self.signer = signer
        self.transport = SessionTransport(settings)
        self.users = users
        self._built = True

    def configure(self, *, settings: SettingsSource | None = None, store: SessionStore | None = None) -> None:
        """Replace the settings or the store given; the parts are built anew from them on next use.

        Raises:
            RuntimeError: the store is open (the app is running); close it first.
        """
        if self.built and self.gateway.is_open:
            raise RuntimeError(
                "the session manager is in use (its store is open): call configure() before the app "
                "starts, or after `await sessions.close()`"
            )
        if settings is not None:
            self._settings = settings
        if store is not None:
            self._store = store
        if self._built:
            self._built = False
            for name in _BUILT_PARTS:
                delattr(self, name)

    @property
    def clock(self) -> Callable[[], float]:
        """Returns the current time in seconds: the clock every timeout is measured by."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        if self.built:
            self.policy.clock = clock

    @property
    def store(self) -> SessionStore:
        """The store: the one given (needing no settings), or else the one `build` makes from ``settings.store_url``."""
        if not self._built and self._store is not None:
            return self._store
        return self.gateway.store

    @property
    def cookie_name(self) -> str:
        """The session cookie's name, known before `build`: it needs no secret key.

        From the built or given settings, or else from the ``SESSION_*`` variables without reading
        the secret key, so the OpenAPI schema of an app that never started still renders. Settings
        given as a function are built for it (that function may need the secret).
        """
        return self.early_settings().session_cookie_name

    def early_settings(self, *, build: bool = True) -> SessionSettings:
        """The settings, readable before `build` without the secret key (for the cookie name, the transport).

        The built or given settings, or else the ``SESSION_*`` variables read with a throwaway secret
        key. Settings given as a function are built for it (that function may need the secret),
        unless ``build`` is false: then the environment's stand in until the app starts.

        Raises:
            SessionConfigError: a setting is invalid; the message names the variable.
        """
        if self.built or (build and callable(self._settings)):
            return self.settings
        if callable(self._settings):
            return environment_settings()
        if self._settings is not None:
            return self._settings
        return environment_settings()

    if not TYPE_CHECKING:  # kept from mypy, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            # Reached only for a slot not yet filled: the first read of a built part builds them all.
            if name in _BUILT_PARTS:
                self.build()
                return object.__getattribute__(self, name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
