"""Optional encryption of session data at rest (Fernet, from the ``encryption`` extra)."""

import json
from typing import Any

from fastapi_sessions._metadata import PLAIN
from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.settings import SessionSettings

__all__ = ["DataCipher", "DecryptionError"]


class DecryptionError(ValueError):
    """A stored value does not decrypt with any key in ``SESSION_ENCRYPTION_KEYS``."""


class DataCipher:
    """Encrypts each stored field's JSON with a key ring (newest key first; older keys still decrypt).

    Fields are encrypted one by one, so partial updates still write only what changed.
    """

    def __init__(self, keys: list[str]) -> None:
        try:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "SESSION_ENCRYPTION_KEYS needs the 'cryptography' package: "
                "pip install 'fastapi-sessions-typed[encryption]'"
            ) from None
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise SessionConfigError(
                "SESSION_ENCRYPTION_KEYS: each key must be a Fernet key "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
        self._invalid_token = InvalidToken

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> "DataCipher | None":
        keys = [key.get_secret_value() for key in settings.encryption_keys]
        return cls(keys) if keys else None

    def encrypt_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            name: value
            if name in PLAIN
            else self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")
            for name, value in data.items()
        }

    def decrypt_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        decoded: dict[str, Any] = {}
        for name, value in data.items():
            if name in PLAIN:
                decoded[name] = value
                continue
            if not isinstance(value, str):
                raise DecryptionError(f"field {name!r} is not encrypted")
            try:
                decoded[name] = json.loads(self._fernet.decrypt(value.encode("ascii")))
            except (self._invalid_token, ValueError):
                raise DecryptionError(f"field {name!r} does not decrypt with SESSION_ENCRYPTION_KEYS") from None
        return decoded
