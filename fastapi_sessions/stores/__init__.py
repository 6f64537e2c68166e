"""Session stores, and `store_from_url` which picks one by the scheme of ``SESSION_STORE_URL``.

Only the memory store is imported here. Every other store lives in its own module that imports its
driver (``fastapi_sessions.stores.redis`` and so on), so ``import fastapi_sessions`` never loads a
database client.
"""

import importlib

from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.stores._url import SCHEMES, redact
from fastapi_sessions.stores.base import SessionStore as SessionStore
from fastapi_sessions.stores.base import StoredSession as StoredSession
from fastapi_sessions.stores.base import UpdateResult as UpdateResult
from fastapi_sessions.stores.memory import MemoryStore as MemoryStore

__all__ = ["MemoryStore", "SessionStore", "StoredSession", "UpdateResult", "store_from_url"]


def store_from_url(url: str) -> SessionStore:
    """Build the store a URL names, e.g. ``redis://localhost:6379/0`` or ``sqlite:///sessions.db``.

    Raises:
        SessionConfigError: the scheme is unknown or the URL is malformed.
        ImportError: the store's driver is missing; the message names the extra to install.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else url.partition(":")[0].lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{name}://" for name in sorted(SCHEMES))
        raise SessionConfigError(f"SESSION_STORE_URL {redact(url)!r}: unknown scheme {scheme!r}; use one of {known}")
    module_name, class_name = SCHEMES[scheme]
    module = importlib.import_module(module_name)
    store: SessionStore = getattr(module, class_name).from_url(url)
    return store
