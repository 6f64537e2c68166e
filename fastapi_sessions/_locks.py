"""`KeyLocks`: a lock per session key in this process, held only while someone holds or waits for it."""

import asyncio
from types import TracebackType

__all__ = ["KeyLocks"]


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyLocks:
    """Queues the merging commits of one session in this process, so they never retry against each other.

    ``async with locks.hold(key):`` waits for the commits of ``key`` ahead of it. A key's lock exists
    while a commit holds it or waits for it, and is forgotten after, so the table stays as small as
    the number of sessions being written at that moment.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def hold(self, key: str) -> "_Holding":
        """The lock of ``key``, as an async context manager."""
        return _Holding(self, key)

    def __len__(self) -> int:
        """How many keys have a lock now (held or waited for)."""
        return len(self._held)

    def _enter(self, key: str) -> _Held:
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        held.users += 1
        return held

    def _leave(self, key: str, held: _Held) -> None:
        held.users -= 1
        if not held.users:
            del self._held[key]


class _Holding:
    __slots__ = ("_held", "_key", "_locks")

    def __init__(self, locks: KeyLocks, key: str) -> None:
        self._locks = locks
        self._key = key
        self._held: _Held | None = None

    async def __aenter__(self) -> None:
        held = self._held = self._locks._enter(self._key)
        try:
            await held.lock.acquire()
        except BaseException:  # cancelled while waiting: no longer a user of the lock
            self._locks._leave(self._key, held)
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        held = self._held
        assert held is not None
        held.lock.release()
        self._locks._leave(self._key, held)
