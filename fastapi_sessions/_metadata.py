"""The names the library keeps in every stored session beside the model's fields.

Each begins with ``_``, which no model field may (Pydantic treats such names as private), so they
never collide with application data.
"""

__all__ = ["AGENT", "CREATED", "CSRF", "EXPIRY", "FLASH", "IP", "PLAIN", "SEEN", "is_metadata"]

CREATED = "_created"
"""When the session was first stored (seconds since the epoch); the absolute timeout counts from it."""
SEEN = "_seen"
"""When the session was last written or touched; the idle timeout counts from it."""
CSRF = "_csrf"
"""The session's CSRF token."""
FLASH = "_flash"
"""Queued flash messages, as ``[category, message]`` pairs."""
AGENT = "_agent"
"""The ``User-Agent`` of the request that created or last regenerated the session."""
IP = "_ip"
"""The client address of that request."""
EXPIRY = "_expiry"
"""This session's own lifetime, from `SessionModel.set_expiry`: ``[max_age, idle_timeout, persistent]``."""

PLAIN = frozenset({CREATED, SEEN, EXPIRY})
"""Kept readable under encryption at rest: expiry is decided before anything is decrypted."""


def is_metadata(name: str) -> bool:
    """Whether ``name`` is one of the library's own names rather than a model field."""
    return name.startswith("_")
