"""The demo's user directory: usernames, roles and scrypt password hashes, kept in memory."""

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["DEMO_USERS", "User", "UserDirectory", "hash_password", "verify_password"]

# scrypt's cost: 16 MiB and about 50 ms per hash, which is what makes a stolen hash expensive to guess.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``, with its parameters: ``scrypt$n$r$p$salt$hash`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by `hash_password` (compared in constant time)."""
    scheme, n, r, p, salt, expected = stored.split("$")
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(digest, bytes.fromhex(expected))


@dataclass
class User:
    """A user of the demo. The username is also the user ID the sessions are indexed by."""

    username: str
    name: str
    roles: frozenset[str]
    password_hash: str = field(repr=False)


# username, display name, roles, password: shown on the login page, since this is a demo.
DEMO_USERS = (
    ("alice", "Alice", frozenset({"user"}), "alice"),
    ("admin", "Ada Admin", frozenset({"admin"}), "admin"),
)


class UserDirectory:
    """The users, by username. A password change lasts until the server stops."""

    def __init__(self, users: list[User]) -> None:
        self._users = {user.username: user for user in users}
        # Checked when the username is unknown, so that a wrong username costs as long as a wrong password.
        self._decoy = hash_password(secrets.token_urlsafe())

    @classmethod
    def demo(cls) -> "UserDirectory":
        """The demo's users (`DEMO_USERS`), their passwords hashed afresh."""
        users = [User(username, name, roles, hash_password(password)) for username, name, roles, password in DEMO_USERS]
        return cls(users)

    def __iter__(self) -> Iterator[User]:
        return iter(self._users.values())

    def get(self, username: str) -> User | None:
        return self._users.get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user whose username and password these are, or ``None``."""
        user = self._users.get(username)
        matches = verify_password(password, user.password_hash if user is not None else self._decoy)
        return user if user is not None and matches else None

    def set_password(self, username: str, password: str) -> None:
        self._users[username].password_hash = hash_password(password)
