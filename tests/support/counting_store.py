"""`CountingStore`: a wrapper that counts every call a store gets."""

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fastapi_sessions import SessionStore, StoredSession, UpdateResult


class CountingStore(SessionStore):
    """Wraps a store and counts every call, to prove which requests do store I/O and which write.

    Args:
        inner: The store under test.
        lifecycle: Whether `open` and `close` reach the inner store. Off when several managers share
            one store and the test opens and closes it once.

    Attributes:
        calls: How many times each data method ran (``open`` and ``close`` are not counted).
        updates: The ``changes`` of every `update`, in order.
        keys: Every key the store was given.
        ttls: The ``ttl`` of every write that sets one (create, update, replace), in order.
    """

    WRITES = ("create", "update", "delete", "replace")

    def __init__(self, inner: SessionStore, *, lifecycle: bool = True) -> None:
        self.inner = inner
        self.lifecycle = lifecycle
        self.calls: Counter[str] = Counter()
        self.updates: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self.ttls: list[float] = []

    @property
    def in_process(self) -> bool:
        """As the inner store: the manager applies no timeout to an in-process store."""
        return bool(getattr(self.inner, "in_process", False))

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in self.WRITES)

    @property
    def io(self) -> int:
        """Every data call, reads and writes."""
        return sum(self.calls.values())

    def _called(self, name: str) -> None:
        """Counts a call; subclasses may also fail it, as a store that is down would."""
        self.calls[name] += 1

    def reset(self) -> None:
        self.calls.clear()
        self.updates.clear()
        self.keys.clear()
        self.ttls.clear()

    async def open(self) -> None:
        if self.lifecycle:
            await self.inner.open()

    async def close(self) -> None:
        if self.lifecycle:
            await self.inner.close()

    async def load(self, key: str) -> StoredSession | None:
        self._called("load")
        self.keys.add(key)
        return await self.inner.load(key)

    async def load_many(self, keys: Sequence[str]) -> list[StoredSession | None]:
        self._called("load_many")
        self.keys.update(keys)
        return await self.inner.load_many(keys)

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        self._called("create")
        self.keys.add(key)
        self.ttls.append(ttl)
        await self.inner.create(key, data, ttl=ttl, user_id=user_id)

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        self._called("update")
        self.keys.add(key)
        self.updates.append(dict(changes))
        self.ttls.append(ttl)
        return await self.inner.update(key, changes, removed=removed, ttl=ttl, expected_version=expected_version)

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
        self._called("replace")
        self.keys.update((old_key, new_key))
        self.ttls.append(ttl)
        return await self.inner.replace(old_key, new_key, data, ttl=ttl, user_id=user_id, old_user_id=old_user_id)

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        self._called("delete")
        self.keys.add(key)
        return await self.inner.delete(key, user_id=user_id)

    async def user_keys(self, user_id: str) -> list[str]:
        self._called("user_keys")
        return await self.inner.user_keys(user_id)

    async def cleanup(self) -> int:
        self._called("cleanup")
        return await self.inner.cleanup()

    async def count(self) -> int:
        self._called("count")
        return await self.inner.count()
