"""The store interface every session backend implements, and the one translation of driver errors."""

import abc
import asyncio
import contextlib
import enum
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from fastapi_sessions.exceptions import CorruptRecordError, SessionConfigError, StoreError, StoreUnavailableError

__all__ = [
    "SessionStore",
    "StoredSession",
    "UpdateResult",
    "unavailable",
]

logger = logging.getLogger("fastapi_sessions")


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session as a store returns it.

    Attributes:
        data: The session's fields by name, as JSON-compatible values. Names beginning with ``_``
            are the library's own metadata (creation and last-seen times, CSRF token, flash
            messages); the rest are the fields of the application's session model.
        version: Incremented by the store on every update; used by ``strict_updates``.
        user_id: The user the session belongs to, as given to `SessionStore.create`, or ``None``.
    """

    data: dict[str, Any]
    version: int = 1
    user_id: str | None = None


class UpdateResult(enum.Enum):
    """What `SessionStore.update` did."""

    UPDATED = "updated"
    MISSING = "missing"
    """No live record: it expired or was deleted (logged out, regenerated) meanwhile. Nothing written."""
    CONFLICT = "conflict"
    """``expected_version`` did not match. Nothing written."""


class SessionStore(abc.ABC):
    """Where sessions live between requests.

    A store maps a key (a hash of the session ID, never the ID itself) to a record of fields. Each
    write carries its own time to live in seconds, measured by the store's own clock, and a store
    never returns a record past its expiry, whether or not the record is still physically there.

    Subclasses implement the five abstract methods at the end of this class. `open`, `close`,
    `replace`, `load_many`, `delete_user_sessions`, `delete_user_session` and `cleanup` have
    defaults that a store overrides where it can do better (one transaction, one round trip). The
    defaults of the two per-user deletions are not atomic: a store whose operations wait on I/O
    overrides them (see their docstrings). `count`, which only the command-line tool calls, raises
    `NotImplementedError` unless the store overrides it.

    Every store reports failures the same way: it lists its driver's exceptions that mean "the
    server is unreachable, too slow, read-only or full" in `unavailable_errors` (and those that mean
    any other failure in `failure_errors`), and runs each driver call inside `translating`, which
    raises `StoreUnavailableError` (HTTP 503) or `StoreError` with the store, the operation and
    `location` in the message.

    Attributes:
        unavailable_errors: Driver exceptions that mean the store cannot be reached now.
        failure_errors: Other driver exceptions, reported as `StoreError`.
    """

    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    failure_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @classmethod
    def from_url(cls, url: str) -> "SessionStore":
        """Build the store from a ``SESSION_STORE_URL``; stores that have a URL scheme override this.

        Raises:
            SessionConfigError: this store cannot be built from a URL.
        """
        raise SessionConfigError(
            f"{cls.__name__} cannot be built from a URL: create it in code and pass it as SessionManager(store=...)"
        )

    @property
    def in_process(self) -> bool:
        """The store does no I/O (`MemoryStore`): the library applies no timeout to its calls.

        A store class sets ``in_process = True``; a store wrapping another answers as the inner one.
        """
        return False

    @property
    def location(self) -> str:
        """Where the store keeps sessions, for log lines and errors (never a password or token)."""
        return type(self).__name__

    def is_unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised by the driver, means the store cannot be reached now."""
        return isinstance(exc, self.unavailable_errors)

    def describe_error(self, exc: BaseException) -> str:
        """The reason a driver error gives, for messages: its type, and its text when it has one."""
        text = str(exc)
        if text:
            return f"{type(exc).__name__}: {text}"
        if isinstance(exc, TimeoutError):
            return "TimeoutError: no answer in time"
        return type(exc).__name__

    @contextlib.contextmanager
    def translating(self, operation: str) -> Iterator[None]:
        """Run driver calls for ``operation``, turning the driver's errors into the library's.

        Raises:
            StoreUnavailableError: the driver raised one of `unavailable_errors` (or `OSError`, `TimeoutError`).
            StoreError: the driver raised one of `failure_errors`.
        """
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            error = unavailable(self, operation, exc)
            if error is not None:
                raise error from exc
            if isinstance(exc, self.failure_errors):
                raise StoreError(self._failure_message(operation, exc)) from exc
            raise

    def _failure_message(self, operation: str, exc: BaseException) -> str:
        return f"{type(self).__name__}: {operation} at {self.location} failed: {self.describe_error(exc)}"

    async def open(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Connect, create tables or indexes, start background tasks. Called once at app startup."""

    async def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release connections and stop background tasks. Called once at app shutdown."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def replace(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> bool:
        """Move a session to a new key (regeneration): delete ``old_key``, then write ``new_key``.

        Returns ``False`` and writes nothing when ``old_key`` has no live record: a session that a
        concurrent logout deleted is never brought back. Deleting first also means a failure in
        between leaves the user logged out, never with two live IDs. Stores that can do both in one
        transaction override this.
        """
        if not await self.delete(old_key, user_id=old_user_id):
            return False
        await self.create(new_key, data, ttl=ttl, user_id=user_id)
        return True

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete every session in ``user_id``'s index but ``keep`` ("log out other devices"); how many were live.

        Must be atomic with `replace`: a session that a concurrent `replace` moves to a new key is
        deleted under that key too, so no session of the user that existed when this was called
        loads after it returns. A session created (or logged in) while it runs may survive.

        The default reads the index once, then deletes key by key. That is atomic only in a store
        whose operations never wait on I/O (in between, no other task runs); anywhere else a
        regeneration in between moves a session out of the keys read, and it survives. Stores that
        wait on a server or a disk override this with one transaction or one script.
        """
        deleted = 0
        for key in await self.user_keys(user_id):
            if key != keep and await self.delete(key, user_id=user_id):
                deleted += 1
        return deleted

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        """Delete the session under ``key`` if it is one of ``user_id``'s; whether a live one was deleted.

        Must be atomic with `replace` of ``key``: either this deletes the session and the `replace`
        returns ``False``, or the `replace` moved it first and this returns ``False`` (the caller's
        handle is stale and the session lives on under its new key: list the sessions again).

        The default checks the index, then deletes. A key never changes owner, and `delete` and
        `replace` each remove a key at most once, so it holds for any store; the built-in stores do
        it in one operation instead of two.
        """
        if key not in await self.user_keys(user_id):
            return False
        return await self.delete(key, user_id=user_id)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        """Load several sessions; the result is in the order of ``keys``, ``None`` where a record cannot be decoded."""
        return list(await asyncio.gather(*(self._load_or_none(key) for key in keys)))

    async def _load_or_none(self, key: str) -> StoredSession | None:
        try:
            return await self.load(key)
        except CorruptRecordError as exc:
            log_skipped(exc)
            return None

    async def cleanup(self) -> int:
        """Delete expired records now, returning how many. Stores whose server expires records itself return 0."""
        return 0

    async def count(self) -> int:
        """How many live sessions the store holds, with a user or without: for ``fastapi-sessions stats``.

        Live means not past its expiry by the store's clock, as for `load`. Nothing calls this on a
        request: a store may take time in proportion to its size, and each built-in store says what
        its count costs. A store that cannot count keeps this default.

        Raises:
            NotImplementedError: the store does not implement counting.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot count its sessions: it does not implement SessionStore.count()"
        )

    _cleanup_task: "asyncio.Task[None] | None" = None

    def start_cleanup(self, interval: float) -> None:
        """Start `cleanup_periodically` as a background task, once; ``interval`` 0 starts nothing."""
        if interval > 0 and self._cleanup_task is None:
            self._cleanup_task = asyncio.create_task(
                self.cleanup_periodically(interval), name=f"fastapi_sessions {type(self).__name__} cleanup"
            )

    async def stop_cleanup(self) -> None:
        """Stop the task `start_cleanup` started, if any."""
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def cleanup_periodically(self, interval: float) -> None:
        """Run `cleanup` every ``interval`` seconds until cancelled; a failed run is logged, never fatal.

        Stores whose records outlive their expiry start this as a task in `open` and cancel it in `close`.
        """
        while True:
            await asyncio.sleep(interval)
            try:
                deleted = await self.cleanup()
            except StoreError as exc:
                logger.warning("expired session cleanup failed: %s", exc)
            except Exception:  # the loop must outlive any one failure
                logger.exception("expired session cleanup failed")
            else:
                if deleted:
                    logger.debug("expired session cleanup: %s deleted %d records", type(self).__name__, deleted)

    def warn_unavailable_at_open(self, exc: StoreUnavailableError) -> None:
        """Log that `open` could not reach the server: the app starts anyway and answers 503 until it can."""
        # The message only: a log record holding the exception keeps the driver's internals alive.
        logger.warning("%s; requests that need a session get 503 until it answers", str(exc))

    # Methods subclasses must implement.

    @abc.abstractmethod
    async def load(self, key: str) -> StoredSession | None:
        """Return the live session stored under ``key``, or ``None`` if there is none or it expired.

        Raises:
            StoreUnavailableError: the store could not be reached in time.
            CorruptRecordError: the record under ``key`` cannot be decoded.
        """

    @abc.abstractmethod
    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        """Store a new session with version 1, expiring ``ttl`` seconds from now.

        With a ``user_id``, also add ``key`` to that user's index (see `user_keys`).
        """

    @abc.abstractmethod
    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        """Set the fields in ``changes``, delete those in ``removed``, and reset the expiry, atomically.

        Only the named fields are written: a concurrent update of other fields survives. The update
        never creates a record: if there is no live record under ``key`` it returns
        `UpdateResult.MISSING` and writes nothing. With ``expected_version``, it writes only if the
        record is at that version, and otherwise returns `UpdateResult.CONFLICT`.
        """

    @abc.abstractmethod
    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        """Delete the session under ``key`` and drop it from ``user_id``'s index.

        Returns whether a live record was deleted; a missing key is not an error.
        """

    @abc.abstractmethod
    async def user_keys(self, user_id: str) -> list[str]:
        """Return the keys in ``user_id``'s index: every live session created for that user.

        The index is a lookup by the exact user ID, never a pattern match. It may still list
        sessions that expired; callers `load` them to check.
        """


# Errors that mean "unreachable" whatever the store: the library's backstop around every store call.
_ALWAYS_UNAVAILABLE = (OSError, TimeoutError)


def unavailable(store: SessionStore, operation: str, exc: BaseException) -> StoreUnavailableError | None:
    """The `StoreUnavailableError` that ``exc``, raised during ``operation``, means for ``store``, or ``None``.

    The one translation every store uses (through `SessionStore.translating`), and the library uses as
    a backstop around store calls. ``OSError`` and ``TimeoutError`` always mean unavailable.

    Args:
        store: The store whose call failed; it names its location and describes the error.
        operation: What was attempted, e.g. ``load``.
        exc: What the call raised.
    """
    if isinstance(exc, StoreUnavailableError):
        return exc
    if not (isinstance(exc, _ALWAYS_UNAVAILABLE) or store.is_unavailable(exc)):
        return None
    return StoreUnavailableError(
        f"{type(store).__name__}: {operation} at {store.location} failed: {store.describe_error(exc)}"
    )


def log_skipped(exc: CorruptRecordError) -> None:
    """The log line of a record `SessionStore.load_many` leaves out because it cannot be read."""
    logger.warning("%s; skipped", exc)


def missing_driver(extra: str, package: str) -> ImportError:
    """The ImportError a store module raises when its driver is not installed, naming the extra to install."""
    return ImportError(f"this store needs the {package!r} package: pip install 'fastapi-sessions-typed[{extra}]'")
