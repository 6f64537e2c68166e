"""What only the memory store does: it is bounded, and a full store takes a new session in constant time."""

import asyncio
from collections import OrderedDict
from typing import Any

from fastapi_sessions import MemoryStore
from tests.support import FakeClock

TTL = 60.0


class CountingEntries(OrderedDict[str, Any]):
    """The store's table, counting every entry that a scan of it visits."""

    visits = 0

    def items(self) -> Any:
        for item in super().items():
            self.visits += 1
            yield item


async def fill(store: MemoryStore, prefix: str, count: int) -> None:
    for index in range(count):
        await store.create(f"{prefix}{index}", {"n": index}, ttl=TTL, user_id=None)


def test_a_full_store_takes_new_sessions_without_scanning_every_entry_each_time() -> None:
    async def scenario() -> int:
        store = MemoryStore(max_entries=2_000, clock=FakeClock())
        await fill(store, "old-", 2_000)
        store._entries = table = CountingEntries(store._entries)
        await fill(store, "new-", 2_000)
        assert len(store) == 2_000
        return table.visits

    visits = asyncio.run(scenario())
    # A scan per insert would visit 2,000 x 2,000 = 4,000,000 entries; a sweep per 500 inserts visits
    # 2,000 each time, and each eviction looks at one entry.
    assert visits <= 20_000, visits


def test_a_full_store_sweeps_expired_sessions_before_evicting_live_ones() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = MemoryStore(max_entries=4, clock=clock)
        await store.create("short", {}, ttl=1, user_id=None)
        await fill(store, "live-", 3)
        await store.load("short")  # the most recently used, yet expired by the time the store is full
        clock.advance(2)
        await store.create("new", {}, ttl=TTL, user_id=None)
        assert len(store) == 4
        assert await store.load("short") is None
        assert [await store.load(f"live-{index}") is not None for index in range(3)] == [True, True, True]

    asyncio.run(scenario())


def test_between_sweeps_the_least_recently_used_session_goes() -> None:
    async def scenario() -> None:
        store = MemoryStore(max_entries=8, clock=FakeClock())
        await fill(store, "s-", 8)
        await store.load("s-0")  # used: s-1 is now the least recently used
        await store.create("n-0", {}, ttl=TTL, user_id="ann")  # sweeps (nothing expired), evicts s-1
        await store.create("n-1", {}, ttl=TTL, user_id=None)  # no sweep: evicts s-2
        assert await store.load("s-1") is None and await store.load("s-2") is None
        assert await store.load("s-0") is not None
        assert await store.user_keys("ann") == ["n-0"]

    asyncio.run(scenario())
