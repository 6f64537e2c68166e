"""`SessionPolicy`: the rules about time, size and encoding that every load and commit applies."""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from fastapi_sessions._encryption import DataCipher
from fastapi_sessions._metadata import CREATED, EXPIRY, SEEN
from fastapi_sessions.exceptions import SessionDataTooLargeError, SessionEncodingError
from fastapi_sessions.model import SessionModel
from fastapi_sessions.settings import SessionSettings

__all__ = ["Lifetime", "SessionPolicy"]


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long one session lives: the settings' values, or its own from `SessionModel.set_expiry`.

    Attributes:
        max_age: Absolute lifetime in seconds, from the session's creation.
        idle_timeout: Seconds without activity that end it, or ``None``.
        persistent: Whether its cookie has a Max-Age (else it is a browser-session cookie).
        touch_after: With ``rolling``, the least time between two touches of an unchanged session.
    """

    max_age: float
    idle_timeout: float | None
    persistent: bool
    touch_after: float


class SessionPolicy:
    """When a session expires, how long the store keeps it, how large it may be, how it is encoded.

    Args:
        model_cls: The application's session model, which every stored record must validate against.
        settings: Supplies ``max_age``, ``idle_timeout``, ``rolling``, ``touch_after``,
            ``max_data_bytes`` and the encryption keys.
        clock: Returns the current time in seconds; tests inject their own.
    """

    __slots__ = (
        "_cipher",
        "clock",
        "default_lifetime",
        "max_data_bytes",
        "max_expiry",
        "model_cls",
        "rolling",
    )

    def __init__(self, model_cls: type[SessionModel], settings: SessionSettings, clock: Callable[[], float]) -> None:
        self.model_cls = model_cls
        self.clock = clock
        self.default_lifetime = Lifetime(
            settings.max_age, settings.idle_timeout, settings.persistent, settings.touch_after
        )
        self.max_expiry = settings.max_expiry
        self.rolling = settings.rolling
        self.max_data_bytes = settings.max_data_bytes
        self._cipher = DataCipher.from_settings(settings)

    def now_datetime(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def lifetime(self, meta: Mapping[str, Any]) -> Lifetime:
        """The lifetime of the session whose record (or metadata) is ``meta``."""
        own = meta.get(EXPIRY)
        if own is None:
            return self.default_lifetime
        return self.own_lifetime(own)

    def own_lifetime(self, own: Any) -> Lifetime:
        """The lifetime a `set_expiry` value stands for, capped by ``max_expiry``; the default if malformed."""
        default = self.default_lifetime
        if not (isinstance(own, list) and len(own) == 3):
            return default
        max_age, idle, persistent = own
        if not (_positive(max_age) and (idle is None or _positive(idle)) and isinstance(persistent, bool)):
            return default
        cap = self.max_expiry
        max_age = min(max_age, cap)
        idle = min(idle, cap) if idle is not None else None
        touch_after = default.touch_after if idle is None else min(default.touch_after, idle / 2)
        return Lifetime(max_age, idle, persistent, touch_after)

    def expiry_value(
        self, max_age: float | None, idle_timeout: float | None, persistent: bool | None
    ) -> list[Any] | None:
        """What `set_expiry` stores: each value given or the setting's, capped; ``None`` for all defaults."""
        if max_age is None and idle_timeout is None and persistent is None:
            return None
        default = self.default_lifetime
        for name, value in (("max_age", max_age), ("idle_timeout", idle_timeout)):
            if value is not None and not _positive(value):
                raise ValueError(f"set_expiry: {name} must be a positive number of seconds, got {value!r}")
        cap = self.max_expiry
        return [
            min(max_age if max_age is not None else default.max_age, cap),
            min(idle_timeout, cap) if idle_timeout is not None else default.idle_timeout,
            persistent if persistent is not None else default.persistent,
        ]

    def expiry_reason(self, data: dict[str, Any]) -> str | None:
        """Why a stored session is dead by this server's clock (``"absolute"``, ``"idle"``), or ``None``."""
        now = self.clock()
        lifetime = self.lifetime(data)
        created = data.get(CREATED)
        if not isinstance(created, int | float) or now >= created + lifetime.max_age:
            return "absolute"
        idle = lifetime.idle_timeout
        seen = data.get(SEEN, created)
        if idle is not None and (not isinstance(seen, int | float) or now >= seen + idle):
            return "idle"
        return None

    def ttl(self, created: float, now: float, lifetime: Lifetime) -> float:
        """Seconds the store keeps a session written now: until its absolute or idle deadline, whichever is first."""
        deadline = created + lifetime.max_age
        if lifetime.idle_timeout is not None:
            deadline = min(deadline, now + lifetime.idle_timeout)
        return max(deadline - now, 0.001)

    def cookie_max_age(self, created: float, now: float, lifetime: Lifetime) -> int:
        """The cookie's Max-Age: the time left of the absolute lifetime."""
        return int(created + lifetime.max_age - now)

    def touch_due(self, seen: float, now: float, lifetime: Lifetime) -> bool:
        """Whether a request that changed nothing should still refresh the idle expiry (``rolling``)."""
        return self.rolling and now - seen >= lifetime.touch_after

    def check_size(self, data: dict[str, Any]) -> None:
        """Raise `SessionDataTooLargeError` if ``data`` as JSON is over ``max_data_bytes``."""
        try:
            size = len(to_json(data))  # compact UTF-8 JSON, as `json.dumps` gives it, in a tenth of the time
        except PydanticSerializationError as exc:
            if "surrogates not allowed" not in str(exc):
                raise
            raise SessionEncodingError(_unencodable(data)) from None
        if size > self.max_data_bytes:
            raise SessionDataTooLargeError(
                f"the session is {size} bytes as JSON, over SESSION_MAX_DATA_BYTES={self.max_data_bytes}; "
                "keep large data elsewhere and store its ID in the session, or raise the limit"
            )

    def encode(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        """The record ``key`` as the store keeps it (with ``encryption_keys``, each field encrypted for it)."""
        return self._cipher.encrypt_fields(data, key) if self._cipher else data

    def decode(self, data: dict[str, Any], key: str) -> tuple[dict[str, Any], SessionModel]:
        """The live record ``key`` as the store returned it: decrypted, and validated into the session model.

        Raises:
            DecryptionError: a field does not decrypt with any key, for this session and field.
            ValidationError: the data no longer fits the model (it changed since the record was written).
        """
        data = self.decrypt(data, key)
        return data, self.model_cls.model_validate(data)

    def decrypt(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        """The fields of the record ``key`` in clear (unchanged without ``encryption_keys``).

        Raises:
            DecryptionError: a field does not decrypt with any key, for this session and field.
        """
        return self._cipher.decrypt_fields(data, key) if self._cipher else data


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf")


def _unencodable(data: dict[str, Any]) -> str:
    names = []
    for name, value in data.items():
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            names.append(name)
    return (
        f"the session field {', '.join(map(repr, names))} holds text that is not valid Unicode "
        "(a lone surrogate such as \\ud800); it was not saved"
    )
