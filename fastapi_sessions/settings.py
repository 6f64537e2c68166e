"""`SessionSettings`: every option of fastapi_sessions, read from ``SESSION_*`` environment variables."""

import secrets
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fastapi_sessions.exceptions import SessionConfigError

__all__ = ["SessionSettings"]

MIN_SECRET_LENGTH = 32

# Secrets copied from tutorials and templates. A key that appears in public code signs nothing.
_WELL_KNOWN_SECRETS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "my-secret",
        "keyboard cat",
        "your-secret-key",
        "supersecretkey",
        "super-secret-key",
        "development",
        "please-change-me",
        "replace-me",
    }
)

# RFC 6265: a cookie name is a token; Domain and Path values are printable ASCII without ';'.
_TOKEN_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')


# Headers with a meaning of their own, which the header transport must not take over.
_RESERVED_HEADERS = frozenset({"authorization", "cookie", "host", "origin", "referer", "set-cookie", "x-csrf-token"})


def _is_token(value: str) -> bool:
    return bool(value) and all("!" <= ch <= "~" and ch not in _TOKEN_SEPARATORS for ch in value)


def _is_attribute_value(value: str) -> bool:
    return all(" " <= ch <= "~" and ch not in ';,"\\' for ch in value) and not value.startswith(" ")


def _check_secret(name: str, value: SecretStr) -> None:
    secret = value.get_secret_value()
    stripped = secret.strip().lower()
    if not stripped:
        raise ValueError(
            f"{name} is empty; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} is {len(secret)} characters; use at least {MIN_SECRET_LENGTH} "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if stripped in _WELL_KNOWN_SECRETS or len(set(secret)) < 8:
        raise ValueError(f"{name} is a well-known or low-entropy value; generate a random one")


class SessionSettings(BaseSettings):
    """Configuration of a `SessionManager`, mirroring express-session's cookie and TTL options.

    Every field can be set as a keyword argument or from the environment (``SESSION_<FIELD>``), and
    from a ``.env`` file in the working directory. An empty variable means "not set": the default
    applies.

    Attributes:
        secret_key: ``SESSION_SECRET_KEY``. Signs the session cookie. Required; at least 32
            characters; well-known values are refused.
        secret_key_fallbacks: ``SESSION_SECRET_KEY_FALLBACKS``. Older keys still accepted when
            verifying a cookie (comma-separated in the environment). A cookie signed with one of them
            is re-signed with ``secret_key`` on its next response.
        store_url: ``SESSION_STORE_URL``. Where sessions are kept: ``memory://`` (default, one process
            only), ``sqlite:///path.db``, ``redis://``, ``rediss://``, ``redis+sentinel://``,
            ``redis+cluster://``, ``postgresql://``, ``mongodb://``. Ignored when a store is passed
            to `SessionManager`.
        cookie_name: ``SESSION_COOKIE_NAME``. Defaults to ``__Host-session`` when ``https_only`` is on
            and ``session`` when it is off.
        namespace: ``SESSION_NAMESPACE``. Enters the cookie's signature and the store key, so two
            managers sharing a secret and a store (a public site and its admin area) never accept
            each other's cookies. Defaults to the cookie name without its ``__Host-`` or
            ``__Secure-`` prefix. Changing it ends every session.
        max_age: ``SESSION_MAX_AGE``. Absolute lifetime in seconds, counted from the session's
            creation; activity, rolling and regeneration never extend it. Also the cookie's Max-Age.
        idle_timeout: ``SESSION_IDLE_TIMEOUT``. Seconds without activity after which the session is
            dead, enforced on the server. ``None`` (``none`` in the environment) disables it.
        max_expiry: ``SESSION_MAX_EXPIRY``. The longest absolute lifetime or idle timeout one
            session may be given with `SessionModel.set_expiry` (a "remember me" login); longer
            values are capped to it. Left unset, it is 30 days, or ``max_age`` if that is longer.
        rolling: ``SESSION_ROLLING``. Whether a request that only reads the session counts as
            activity (refreshing the idle expiry). Writes always count.
        touch_after: ``SESSION_TOUCH_AFTER``. With ``rolling``, refresh the expiry of an unmodified
            session at most once per this many seconds (connect-mongo's ``touchAfter``). Left unset, it
            is 60, or half the idle timeout if that is 60 or less.
        https_only: ``SESSION_HTTPS_ONLY``. Sets ``Secure`` on the cookie. Turn off only for local
            development over plain http. ``"auto"`` (express-session's ``secure: 'auto'``) sets it, and
            the ``__Host-`` name, on requests that came over https (as the server sees them after
            its proxy-header handling) and leaves both off on plain http; it cannot go with
            ``same_site="none"``, ``partitioned`` or a ``__Host-``/``__Secure-`` name of your own.
        http_only: ``SESSION_HTTP_ONLY``. Sets ``HttpOnly`` so page scripts cannot read the cookie.
        same_site: ``SESSION_SAME_SITE``. ``lax`` (default), ``strict`` or ``none`` (needs
            ``https_only``).
        domain: ``SESSION_DOMAIN``. Cookie Domain. ``None`` (default) keeps the cookie on the exact
            host, which is what the ``__Host-`` prefix requires.
        path: ``SESSION_PATH``. Cookie Path.
        persistent: ``SESSION_PERSISTENT``. Give the cookie a Max-Age (the time left of ``max_age``) so
            it survives a browser restart. ``False`` sends a browser-session cookie, dropped when the
            browser closes; the server-side timeouts apply either way.
        strict_updates: ``SESSION_STRICT_UPDATES``. Answer 409 when two requests set the same
            scalar of one session at once (a true conflict; every other concurrent change merges).
            Off by default: the last writer of that scalar wins.
        store_timeout: ``SESSION_STORE_TIMEOUT``. Seconds a store operation may take before the
            store counts as unavailable (503).
        retry_after: ``SESSION_RETRY_AFTER``. The ``Retry-After`` seconds sent with a 503.
        max_sessions_per_user: ``SESSION_MAX_SESSIONS_PER_USER``. Limit of live sessions per user.
            ``None`` (default; ``none`` in the environment) means no limit.
        limit_policy: ``SESSION_LIMIT_POLICY``. At the limit, ``evict_oldest`` (default)
            revokes the user's oldest session on login; ``refuse`` answers the login with 409.
        max_data_bytes: ``SESSION_MAX_DATA_BYTES``. Largest session (as JSON) the manager stores.
        csrf_trusted_origins: ``SESSION_CSRF_TRUSTED_ORIGINS``. Extra origins (comma-separated)
            allowed by `SessionManager.require_csrf` besides the request's own.
        encryption_keys: ``SESSION_ENCRYPTION_KEYS``. Keys in the Fernet key format (comma-separated,
            newest first) that encrypt session data at rest with AES-256-GCM. Needs the ``encryption``
            extra. Empty: no encryption.
        partitioned: ``SESSION_PARTITIONED``. Sets ``Partitioned`` on the cookie (CHIPS), so a site
            embedded in others' pages keeps one cookie per top-level site. Needs ``https_only``.
        transport: ``SESSION_TRANSPORT``. How the signed session token travels: ``cookie`` (default),
            ``header`` (in the ``header_name`` request header, a new one returned in the same
            response header: for mobile apps and CLIs), or ``both`` (the header when a request sends
            it, the cookie otherwise).
        header_name: ``SESSION_HEADER_NAME``. The header of the header transport (``X-Auth-Token``).
    """

    model_config = SettingsConfigDict(
        env_prefix="SESSION_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    secret_key: SecretStr
    secret_key_fallbacks: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    store_url: str = "memory://"
    cookie_name: str | None = None
    namespace: str | None = None
    max_age: int = Field(default=14 * 24 * 3600, gt=0)
    idle_timeout: int | None = Field(default=24 * 3600, gt=0)
    max_expiry: int = Field(default=30 * 24 * 3600, gt=0)
    rolling: bool = True
    touch_after: int = Field(default=60, ge=0)
    https_only: bool | Literal["auto"] = True
    http_only: bool = True
    same_site: Literal["lax", "strict", "none"] = "lax"
    domain: str | None = None
    path: str = "/"
    persistent: bool = True
    strict_updates: bool = False
    store_timeout: float = Field(default=2.0, gt=0)
    retry_after: int = Field(default=5, ge=0)
    max_sessions_per_user: int | None = Field(default=None, gt=0)
    limit_policy: Literal["evict_oldest", "refuse"] = "evict_oldest"
    max_data_bytes: int = Field(default=64 * 1024, gt=0)
    csrf_trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    partitioned: bool = False
    transport: Literal["cookie", "header", "both"] = "cookie"
    header_name: str = "X-Auth-Token"

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # An empty variable (``SESSION_IDLE_TIMEOUT=`` in a copied .env.example) means "not set": the
        # default applies, so an empty value never weakens a security default. Turning a timeout or
        # limit off takes the word ``none``.
        if isinstance(data, dict):
            for name in [name for name, value in data.items() if value == "" and name in cls.model_fields]:
                if name != "secret_key":
                    del data[name]
        return data

    @field_validator("idle_timeout", "max_sessions_per_user", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("secret_key_fallbacks", "csrf_trusted_origins", "encryption_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("same_site", "transport", mode="before")
    @classmethod
    def _lower_words(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("secret_key", mode="before")
    @classmethod
    def _present_secret(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(
                "SESSION_SECRET_KEY is empty; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr) -> SecretStr:
        _check_secret("SESSION_SECRET_KEY", value)
        return value

    @field_validator("secret_key_fallbacks")
    @classmethod
    def _strong_fallbacks(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            _check_secret("each of SESSION_SECRET_KEY_FALLBACKS", key)
        return value

    @model_validator(mode="after")
    def _check_cookie(self) -> Self:
        name = self.session_cookie_name
        if not _is_token(name):
            raise ValueError(
                f"SESSION_COOKIE_NAME {name!r} is not a valid cookie name (printable ASCII, no spaces or separators)"
            )
        for label, value in (("SESSION_DOMAIN", self.domain), ("SESSION_PATH", self.path)):
            if value is not None and not _is_attribute_value(value):
                raise ValueError(
                    f"{label} {value!r} contains a character not allowed in a cookie attribute "
                    "(printable ASCII only, no ';', ',', quotes or backslashes)"
                )
        if not _is_token(self.header_name) or self.header_name.lower() in _RESERVED_HEADERS:
            raise ValueError(
                f"SESSION_HEADER_NAME {self.header_name!r} is not a header name the session token can use "
                f"(an HTTP token, none of {', '.join(sorted(_RESERVED_HEADERS))})"
            )
        if not self.path.startswith("/"):
            raise ValueError(f"SESSION_PATH must start with '/', got {self.path!r}")
        if self.same_site == "none" and self.https_only is not True:
            raise ValueError(
                "SESSION_SAME_SITE=none needs SESSION_HTTPS_ONLY=true (browsers drop SameSite=None without Secure)"
            )
        if self.partitioned and self.https_only is not True:
            raise ValueError(
                "SESSION_PARTITIONED=true needs SESSION_HTTPS_ONLY=true "
                "(browsers drop Partitioned cookies without Secure)"
            )
        if self.cookie_name and self.https_only == "auto" and name.startswith(("__Host-", "__Secure-")):
            raise ValueError(
                f"cookie name {name!r} needs https on every request, which SESSION_HTTPS_ONLY=auto does not "
                "promise: leave SESSION_COOKIE_NAME unset (auto names it __Host-session over https and "
                "session over http) or set SESSION_HTTPS_ONLY=true"
            )
        if name.startswith("__Host-"):
            if not self.https_only:
                raise ValueError(f"cookie name {name!r} uses the __Host- prefix, which needs SESSION_HTTPS_ONLY=true")
            if self.domain is not None:
                raise ValueError(f"cookie name {name!r} uses the __Host- prefix, which forbids SESSION_DOMAIN")
            if self.path != "/":
                raise ValueError(f"cookie name {name!r} uses the __Host- prefix, which needs SESSION_PATH=/")
        if name.startswith("__Secure-") and not self.https_only:
            raise ValueError(f"cookie name {name!r} uses the __Secure- prefix, which needs SESSION_HTTPS_ONLY=true")
        if self.max_expiry < self.max_age:
            if "max_expiry" in self.model_fields_set:
                raise ValueError(
                    f"SESSION_MAX_EXPIRY ({self.max_expiry}) must be at least SESSION_MAX_AGE ({self.max_age}): "
                    "it caps the lifetime a session may be given, the default one included"
                )
            object.__setattr__(self, "max_expiry", self.max_age)
        if self.idle_timeout is not None and self.touch_after >= self.idle_timeout:
            if "touch_after" not in self.model_fields_set:
                # Not asked for: the default gives way to a short idle timeout instead of refusing it.
                object.__setattr__(self, "touch_after", self.idle_timeout // 2)
                return self
            raise ValueError(
                f"SESSION_TOUCH_AFTER ({self.touch_after}) must be below SESSION_IDLE_TIMEOUT ({self.idle_timeout}), "
                "or an active session could go idle between two touches"
            )
        return self

    @property
    def session_namespace(self) -> str:
        """The namespace in effect: ``namespace``, or the cookie name without its prefix."""
        if self.namespace:
            return self.namespace
        return self.session_cookie_name.removeprefix("__Host-").removeprefix("__Secure-")

    @property
    def session_cookie_name(self) -> str:
        """The cookie name in effect: ``cookie_name``, or the default for ``https_only``."""
        if self.cookie_name:
            return self.cookie_name
        return "__Host-session" if self.https_only else "session"

    @property
    def plain_http_cookie_name(self) -> str:
        """With ``https_only="auto"``, the cookie name on plain-http requests (``session`` by default)."""
        return self.cookie_name or "session"

    @classmethod
    def load(cls, **overrides: Any) -> "SessionSettings":
        """Build settings from the environment and ``overrides``, turning errors into one clear message.

        Raises:
            SessionConfigError: naming each ``SESSION_*`` variable to fix.
        """
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SessionConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """Render a settings `ValidationError` as lines that name the environment variable to fix."""
    lines = ["invalid session settings:"]
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required but not set"
        variable = f"SESSION_{loc.upper()}" if loc else "settings"
        if message.startswith("SESSION_") or message.startswith("each of SESSION_") or message.startswith("cookie"):
            lines.append(f"  - {message}")
        else:
            lines.append(f"  - {variable}: {message}")
    return "\n".join(lines)


def environment_settings() -> SessionSettings:
    """The settings the ``SESSION_*`` variables (and ``.env``) give, read without the secret keys.

    For what is needed before the app starts and may run without the secret: the cookie name and
    the transport, for the OpenAPI schema of an app that never started or a test. A throwaway key
    stands in for ``SESSION_SECRET_KEY`` (and no fallbacks for ``SESSION_SECRET_KEY_FALLBACKS``);
    every other field is read and checked as usual. Never sign anything with them.

    Raises:
        SessionConfigError: another setting is invalid; the message names the variable.
    """
    throwaway = secrets.token_urlsafe(MIN_SECRET_LENGTH)
    return SessionSettings.load(secret_key=throwaway, secret_key_fallbacks=[])
