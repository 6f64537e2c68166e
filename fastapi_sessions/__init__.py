"""Typed, store-backed server-side sessions for FastAPI."""

import importlib.machinery

from fastapi_sessions import _request
from fastapi_sessions.__version__ import __version__ as __version__
from fastapi_sessions._merge import Counter as Counter
from fastapi_sessions._merge import Delta as Delta
from fastapi_sessions._registry import SessionInfo as SessionInfo
from fastapi_sessions.events import EventKind as EventKind
from fastapi_sessions.events import RegenerationReason as RegenerationReason
from fastapi_sessions.events import RejectionReason as RejectionReason
from fastapi_sessions.events import RevocationReason as RevocationReason
from fastapi_sessions.events import SessionCreated as SessionCreated
from fastapi_sessions.events import SessionDestroyed as SessionDestroyed
from fastapi_sessions.events import SessionEvent as SessionEvent
from fastapi_sessions.events import SessionExpired as SessionExpired
from fastapi_sessions.events import SessionRegenerated as SessionRegenerated
from fastapi_sessions.events import SessionRejected as SessionRejected
from fastapi_sessions.events import SessionRevoked as SessionRevoked
from fastapi_sessions.exceptions import CorruptRecordError as CorruptRecordError
from fastapi_sessions.exceptions import SessionConfigError as SessionConfigError
from fastapi_sessions.exceptions import SessionConflictError as SessionConflictError
from fastapi_sessions.exceptions import SessionDataTooLargeError as SessionDataTooLargeError
from fastapi_sessions.exceptions import SessionEncodingError as SessionEncodingError
from fastapi_sessions.exceptions import SessionError as SessionError
from fastapi_sessions.exceptions import SessionLimitError as SessionLimitError
from fastapi_sessions.exceptions import SessionNotBoundError as SessionNotBoundError
from fastapi_sessions.exceptions import StoreError as StoreError
from fastapi_sessions.exceptions import StoreUnavailableError as StoreUnavailableError
from fastapi_sessions.guards import CsrfGuard as CsrfGuard
from fastapi_sessions.guards import SessionGuard as SessionGuard
from fastapi_sessions.manager import SessionManager as SessionManager
from fastapi_sessions.model import AuthSession as AuthSession
from fastapi_sessions.model import FlashMessage as FlashMessage
from fastapi_sessions.model import SessionModel as SessionModel
from fastapi_sessions.settings import SessionSettings as SessionSettings
from fastapi_sessions.stores import MemoryStore as MemoryStore
from fastapi_sessions.stores import SessionStore as SessionStore
from fastapi_sessions.stores import StoredSession as StoredSession
from fastapi_sessions.stores import UpdateResult as UpdateResult
from fastapi_sessions.stores import store_from_url as store_from_url

compiled: bool = (_request.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
"""Whether the modules every request runs through are running compiled by mypyc.

True where a compiled wheel is installed (built with ``HATCH_BUILD_HOOK_ENABLE_MYPYC=1``), False for the
pure-Python package, which runs the same code.
"""

__all__ = [
    "AuthSession",
    "CorruptRecordError",
    "Counter",
    "CsrfGuard",
    "Delta",
    "EventKind",
    "FlashMessage",
    "MemoryStore",
    "RegenerationReason",
    "RejectionReason",
    "RevocationReason",
    "SessionConfigError",
    "SessionConflictError",
    "SessionCreated",
    "SessionDataTooLargeError",
    "SessionDestroyed",
    "SessionEncodingError",
    "SessionError",
    "SessionEvent",
    "SessionExpired",
    "SessionGuard",
    "SessionInfo",
    "SessionLimitError",
    "SessionManager",
    "SessionModel",
    "SessionNotBoundError",
    "SessionRegenerated",
    "SessionRejected",
    "SessionRevoked",
    "SessionSettings",
    "SessionStore",
    "StoreError",
    "StoreUnavailableError",
    "StoredSession",
    "UpdateResult",
    "__version__",
    "compiled",
    "store_from_url",
]
