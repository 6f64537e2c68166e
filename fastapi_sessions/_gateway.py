"""`StoreGateway`: the one way the library reaches its store, under a deadline and with one error type."""

import asyncio
from collections.abc import Collection, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions.exceptions import StoreUnavailableError
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult, unavailable

__all__ = ["StoreGateway"]

T = TypeVar("T")


class StoreGateway:
    """Opens the store once, puts ``store_timeout`` on each operation, and makes failure `StoreUnavailableError`.

    Exposes the store's operations under the same names, so the rest of the library never awaits the
    store directly. Each returns the coroutine of `_deadline` rather than awaiting it in one more
    coroutine of its own: every session load goes through here.

    Args:
        store: The store.
        timeout: Seconds each operation may take; ``None`` for no deadline. A store that does no I/O
            (`SessionStore.in_process`) gets none whatever is asked.
        telemetry: Spans and metrics of each operation; the providers are looked up as the store opens.
    """

    __slots__ = ("_open_lock", "_opened", "store", "telemetry", "timeout")

    def __init__(self, store: SessionStore, timeout: float | None, telemetry: Telemetry | None = None) -> None:
        self.store = store
        self.timeout = None if store.in_process else timeout
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self._opened = False
        self._open_lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        """Whether the store is open (between `open` and `close`)."""
        return self._opened

    async def open(self) -> None:
        """Open the store, once (at app startup, or on first use if the app never started)."""
        async with self._open_lock:
            if not self._opened:
                self.telemetry.resolve()
                await self.store.open()
                self._opened = True

    async def close(self) -> None:
        """Close the store, once (at app shutdown)."""
        async with self._open_lock:
            if self._opened:
                self._opened = False
                await self.store.close()

    def _call(self, operation: str, awaitable: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
        # A plain function: without telemetry, the caller awaits `_deadline` itself, no extra coroutine.
        if self.telemetry.active:
            return self._observed(operation, awaitable)
        return self._deadline(operation, awaitable)

    async def _observed(self, operation: str, awaitable: Coroutine[Any, Any, T]) -> T:
        with self.telemetry.store_operation(operation, type(self.store).__name__):
            return await self._deadline(operation, awaitable)

    async def _deadline(self, operation: str, awaitable: Coroutine[Any, Any, T]) -> T:
        if not self._opened:
            try:
                await self.open()
            except BaseException:
                awaitable.close()  # it never runs: closed, it is no "never awaited" RuntimeWarning
                raise
        try:
            if self.timeout is None:
                return await awaitable
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and self.timeout is not None:
                store = self.store
                raise StoreUnavailableError(
                    f"{type(store).__name__}: {operation} at {store.location} timed out "
                    f"after {self.timeout:g} s (SESSION_STORE_TIMEOUT)"
                ) from exc
            # The stores translate their drivers' errors; this is the same translation, as a backstop.
            error = unavailable(self.store, operation, exc)
            if error is None:
                raise
            raise error from exc

    def load(self, key: str) -> Coroutine[Any, Any, StoredSession | None]:
        return self._call("load", self.store.load(key))

    def load_many(self, keys: Sequence[str]) -> Coroutine[Any, Any, list[StoredSession | None]]:
        return self._call("load_many", self.store.load_many(keys))

    def create(
        self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None
    ) -> Coroutine[Any, Any, None]:
        return self._call("create", self.store.create(key, data, ttl=ttl, user_id=user_id))

    def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> Coroutine[Any, Any, UpdateResult]:
        return self._call(
            "update", self.store.update(key, changes, removed=removed, ttl=ttl, expected_version=expected_version)
        )

    def replace(
        self,
        old_key: str,
        new_key: str,
        data: Mapping[str, Any],
        *,
        ttl: float,
        user_id: str | None,
        old_user_id: str | None,
    ) -> Coroutine[Any, Any, bool]:
        return self._call(
            "replace", self.store.replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)
        )

    def delete(self, key: str, *, user_id: str | None = None) -> Coroutine[Any, Any, bool]:
        return self._call("delete", self.store.delete(key, user_id=user_id))

    def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> Coroutine[Any, Any, int]:
        return self._call("delete_user_sessions", self.store.delete_user_sessions(user_id, keep=keep))

    def delete_user_session(self, user_id: str, key: str) -> Coroutine[Any, Any, bool]:
        return self._call("delete_user_session", self.store.delete_user_session(user_id, key))

    def user_keys(self, user_id: str) -> Coroutine[Any, Any, list[str]]:
        return self._call("user_keys", self.store.user_keys(user_id))

    def cleanup(self) -> Coroutine[Any, Any, int]:
        return self._call("cleanup", self.store.cleanup())

    def count(self) -> Coroutine[Any, Any, int]:
        return self._call("count", self.store.count())
