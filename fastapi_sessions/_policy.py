"""`SessionPolicy`: the rules about time, size and encoding that every load and commit applies."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi_sessions._encryption import DataCipher
from fastapi_sessions._metadata import CREATED, SEEN
from fastapi_sessions.exceptions import SessionDataTooLargeError, SessionEncodingError
from fastapi_sessions.model import SessionModel
from fastapi_sessions.settings import SessionSettings

__all__ = ["SessionPolicy"]


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
        "idle_timeout",
        "max_age",
        "max_data_bytes",
        "model_cls",
        "rolling",
        "touch_after",
    )

    def __init__(self, model_cls: type[SessionModel], settings: SessionSettings, clock: Callable[[], float]) -> None:
        self.model_cls = model_cls
        self.clock = clock
        self.max_age = settings.max_age
        self.idle_timeout = settings.idle_timeout
        self.rolling = settings.rolling
        self.touch_after = settings.touch_after
        self.max_data_bytes = settings.max_data_bytes
        self._cipher = DataCipher.from_settings(settings)

    def now_datetime(self) -> datetime:
        """The clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def expiry_reason(self, data: dict[str, Any]) -> str | None:
        """Why a stored session is dead by this server's clock (``"absolute"``, ``"idle"``), or ``None``."""
        now = self.clock()
        created = data.get(CREATED)
        if not isinstance(created, int | float) or now >= created + self.max_age:
            return "absolute"
        idle = self.idle_timeout
        seen = data.get(SEEN, created)
        if idle is not None and (not isinstance(seen, int | float) or now >= seen + idle):
            return "idle"
        return None

    def ttl(self, created: float, now: float) -> float:
        """Seconds the store keeps a session written now: until its absolute or idle deadline, whichever is first."""
        deadline = created + self.max_age
        if self.idle_timeout is not None:
            deadline = min(deadline, now + self.idle_timeout)
        return max(deadline - now, 0.001)

    def cookie_max_age(self, created: float, now: float) -> int:
        """The cookie's Max-Age: the time left of the absolute lifetime."""
        return int(created + self.max_age - now)

    def touch_due(self, seen: float, now: float) -> bool:
        """Whether a request that changed nothing should still refresh the idle expiry (``rolling``)."""
        return self.rolling and now - seen >= self.touch_after

    def check_size(self, data: dict[str, Any]) -> None:
        """Raise `SessionDataTooLargeError` if ``data`` as JSON is over ``max_data_bytes``."""
        try:
            size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        except UnicodeEncodeError:
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
