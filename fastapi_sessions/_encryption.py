"""Optional encryption of session data at rest (AES-256-GCM, from the ``encryption`` extra)."""

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from fastapi_sessions._metadata import PLAIN
from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.settings import SessionSettings

__all__ = ["DataCipher", "DecryptionError"]

_PREFIX = "v2."
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_GENERATE = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class DecryptionError(ValueError):
    """A stored value does not decrypt with any key in ``SESSION_ENCRYPTION_KEYS`` for this session and field."""


class DataCipher:
    """Encrypts each stored field's JSON with AES-256-GCM, bound to its session and its field name.

    Fields are encrypted one by one, so partial updates still write only what changed. The session's
    store key and the field's name are the associated data of each ciphertext: a value copied into
    another session, or into another field of the same session, does not decrypt. The key ring lists
    the newest key first; each ciphertext names the key that wrote it, so older keys still decrypt.

    Args:
        keys: 32 random bytes each, URL-safe base64 (the format of a Fernet key).

    Raises:
        SessionConfigError: a key is not 32 bytes of URL-safe base64.
    """

    def __init__(self, keys: list[str]) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "SESSION_ENCRYPTION_KEYS needs the 'cryptography' package: "
                "pip install 'fastapi-sessions-typed[encryption]'"
            ) from None
        self._invalid_tag = InvalidTag
        self._ring: dict[bytes, Any] = {}
        self._current: tuple[bytes, Any] | None = None
        for key in keys:
            secret = _key_bytes(key)
            # A key of its own for this use: the same key may sign or encrypt something else too.
            derived = hashlib.blake2b(b"field encryption", key=secret, digest_size=32, person=b"fs-fields-v2").digest()
            key_id = hashlib.blake2b(derived, digest_size=_KEY_ID_BYTES, person=b"fs-key-id").digest()
            aead = AESGCM(derived)
            self._ring.setdefault(key_id, aead)
            if self._current is None:
                self._current = (key_id, aead)

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> "DataCipher | None":
        keys = [key.get_secret_value() for key in settings.encryption_keys]
        return cls(keys) if keys else None

    def encrypt_fields(self, data: dict[str, Any], record_key: str) -> dict[str, Any]:
        """``data`` with every field but the plain timestamps encrypted for the record ``record_key``."""
        assert self._current is not None
        key_id, aead = self._current
        encrypted: dict[str, Any] = {}
        for name, value in data.items():
            if name in PLAIN:
                encrypted[name] = value
                continue
            nonce = os.urandom(_NONCE_BYTES)
            plaintext = json.dumps(value, separators=(",", ":")).encode()
            token = key_id + nonce + aead.encrypt(nonce, plaintext, _associated(record_key, name))
            encrypted[name] = _PREFIX + base64.urlsafe_b64encode(token).decode("ascii").rstrip("=")
        return encrypted

    def decrypt_fields(self, data: dict[str, Any], record_key: str) -> dict[str, Any]:
        """The fields of the record ``record_key``, decrypted.

        Raises:
            DecryptionError: a field is not encrypted, was written with a key no longer in the ring,
                or does not belong to this session and field.
        """
        decoded: dict[str, Any] = {}
        for name, value in data.items():
            if name in PLAIN:
                decoded[name] = value
                continue
            if not isinstance(value, str) or not value.startswith(_PREFIX):
                raise DecryptionError(f"field {name!r} is not encrypted")
            encoded = value[len(_PREFIX) :]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                raise DecryptionError(f"field {name!r} is not encrypted") from None
            aead = self._ring.get(token[:_KEY_ID_BYTES])
            if aead is None:
                raise DecryptionError(f"field {name!r} was encrypted with a key not in SESSION_ENCRYPTION_KEYS")
            nonce = token[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
            try:
                plaintext = aead.decrypt(nonce, token[_KEY_ID_BYTES + _NONCE_BYTES :], _associated(record_key, name))
                decoded[name] = json.loads(plaintext)
            except (self._invalid_tag, ValueError):
                raise DecryptionError(
                    f"field {name!r} does not decrypt for this session and field (tampered, or moved from another)"
                ) from None
        return decoded


def _associated(record_key: str, name: str) -> bytes:
    return f"{record_key}\x00{name}".encode("utf-8", "surrogatepass")


def _key_bytes(key: str) -> bytes:
    try:
        secret = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        secret = b""
    if len(secret) != 32:
        raise SessionConfigError(
            f"SESSION_ENCRYPTION_KEYS: each key must be 32 random bytes in URL-safe base64 ({_GENERATE})"
        )
    return secret
