"""Session IDs and the signed cookie value that carries them."""

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

from itsdangerous import Signer
from itsdangerous.encoding import base64_encode

__all__ = ["CookieSigner", "UnsignedId", "new_session_id", "store_key"]

# 32 random bytes: 256 bits, well over OWASP's 64-bit minimum of entropy.
_ID_BYTES = 32
_ID_LENGTH = 43  # base64url without padding
# The shape of every value this library issues: checked before any signature check or store lookup,
# so garbage, injection attempts and oversized values cost a regex match and nothing else.
_COOKIE_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}")
_COOKIE_LENGTH = 87
_VERIFIED_CACHE_SIZE = 10_000


def new_session_id() -> str:
    """Return a new random session ID (256 bits from `secrets`)."""
    return secrets.token_urlsafe(_ID_BYTES)


def store_key(session_id: str, namespace: str) -> str:
    """Return the key a session of ``namespace`` is stored under: a hash of its ID, never the ID itself.

    A dump of the store therefore yields no usable session token, and two managers with different
    namespaces never find each other's sessions, even in one store.
    """
    return hashlib.blake2b(session_id.encode("ascii"), digest_size=20, key=namespace.encode("utf-8")[:64]).hexdigest()


class UnsignedId(NamedTuple):
    """A session ID read from a valid cookie."""

    session_id: str
    stale_key: bool
    """Signed with a fallback key: the cookie is re-signed with the current key on the response."""
    key: str
    """The store key of the session, `store_key` of the ID."""


class CookieSigner:
    """Signs session IDs for the cookie and verifies them, with key rotation.

    The cookie value is exactly what ``itsdangerous.Signer(key, salt=f"fastapi_sessions.cookie:{namespace}",
    key_derivation="hmac", digest_method=hashlib.sha256)`` produces and accepts. The derived keys are
    computed once here instead of on every request, which keeps verification to one HMAC.

    Args:
        secret_key: The current key; every new cookie is signed with it.
        fallbacks: Older keys still accepted for verification.
        namespace: Enters the signature and the store key: a cookie of one namespace is no cookie to
            a manager of another, even with the same secret and store.
    """

    salt: ClassVar[str] = "fastapi_sessions.cookie"

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = (), *, namespace: str = "session") -> None:
        self.namespace = namespace
        self._keys = [self._derive(key, namespace) for key in (secret_key, *fallbacks)]
        # Cookies that verified, so a returning client costs a dict lookup instead of an HMAC. Only
        # values this server signed get in, so random cookies cannot fill it.
        self._verified: dict[str, UnsignedId] = {}
        self._log_salt = hashlib.blake2b(secret_key.encode(), digest_size=16, person=b"fs-log-id").digest()

    @classmethod
    def _derive(cls, secret_key: str, namespace: str) -> bytes:
        salt = f"{cls.salt}:{namespace}"
        return Signer(secret_key, salt=salt, key_derivation="hmac", digest_method=hashlib.sha256).derive_key()

    def store_key(self, session_id: str) -> str:
        """The key the session ``session_id`` of this namespace is stored under (`store_key`)."""
        return store_key(session_id, self.namespace)

    def sign(self, session_id: str) -> str:
        """Return the cookie value for ``session_id``."""
        signature = hmac.digest(self._keys[0], session_id.encode("ascii"), "sha256")
        return f"{session_id}.{base64_encode(signature).decode('ascii')}"

    def unsign(self, value: str) -> UnsignedId | None:
        """Return the session ID in a cookie value, or ``None`` for anything this server did not issue."""
        verified = self._verified.get(value)
        if verified is not None:
            return verified
        if len(value) != _COOKIE_LENGTH or not _COOKIE_PATTERN.fullmatch(value):
            return None
        session_id, _, signature = value.partition(".")
        sent = signature.encode("ascii")
        message = session_id.encode("ascii")
        for index, key in enumerate(self._keys):
            # Compared as text, not as decoded bytes: base64 leaves 2 spare bits in the last character,
            # and only the one encoding this server issues may verify.
            if hmac.compare_digest(base64_encode(hmac.digest(key, message, "sha256")), sent):
                verified = UnsignedId(session_id, index > 0, store_key(session_id, self.namespace))
                if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                    self._verified.clear()
                self._verified[value] = verified
                return verified
        return None

    def log_id(self, session_id: str) -> str:
        """A salted hash of the ID for log lines: lines of one session correlate, the ID stays secret."""
        return hmac.new(self._log_salt, session_id.encode("ascii"), hashlib.blake2b).hexdigest()[:16]
