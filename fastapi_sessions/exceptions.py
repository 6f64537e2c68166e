"""Exceptions raised by fastapi_sessions.

The tree::

    SessionError
    ├── SessionConfigError        a setting, store URL or extra is wrong; raised at startup
    ├── SessionNotBoundError      a session method was called on a model that no request loaded
    ├── SessionDataTooLargeError  the session data does not fit the store's or the cookie's limit
    ├── SessionEncodingError      the session data holds text that is not valid Unicode (HTTP 422)
    ├── SessionConflictError      a commit could not merge with another request's (HTTP 409)
    ├── SessionLimitError         the user has max_sessions_per_user sessions and the policy is refuse (HTTP 409)
    └── StoreError                a store could not do what was asked
        ├── StoreUnavailableError the store is unreachable or timed out (HTTP 503)
        └── CorruptRecordError    a stored record cannot be decoded (the request gets a new session)

A bad, tampered, expired or unknown cookie is never an exception: it is a fresh anonymous session
and a log line on the ``fastapi_sessions`` logger.
"""


class SessionError(Exception):
    """Base class of every error raised by fastapi_sessions."""


class SessionConfigError(SessionError, ValueError):
    """The configuration is wrong. The message names the setting or extra to fix."""


class SessionNotBoundError(SessionError, RuntimeError):
    """A session method needs a request, but this model was not loaded by a `SessionManager`."""


class SessionDataTooLargeError(SessionError):
    """The session data exceeds the limit of the store (or of the cookie) in use."""


class SessionEncodingError(SessionError, ValueError):
    """The session data holds text no store can keep: a lone surrogate such as ``"\\ud800"``.

    JSON allows such an escape, so it can arrive in a request body; it is not valid Unicode. The
    request that put it in the session is answered with 422 and nothing is written.
    """


class SessionConflictError(SessionError):
    """A commit could not be merged with another request's (HTTP 409).

    With ``strict_updates``, another request set the same scalar first; in any mode, the session
    kept changing under this commit for as many tries as it makes.
    """


class SessionLimitError(SessionError):
    """A login would exceed ``max_sessions_per_user`` and ``limit_policy`` is ``refuse``."""


class StoreError(SessionError):
    """A store operation failed."""


class StoreUnavailableError(StoreError):
    """The store is unreachable or did not answer in time.

    The request that needed the session is answered with 503 and a ``Retry-After`` header; the
    client's cookie is left as it was, so the session works again once the store is back.
    """


class CorruptRecordError(StoreError):
    """A stored record cannot be decoded: not JSON, a field of the wrong type, an unknown format version.

    Raised by `SessionStore.load`; `SessionStore.load_many` gives ``None`` for such a record. The
    request whose cookie names it gets a fresh anonymous session and a log line, never a 500, and
    the user's session list skips it.
    """
