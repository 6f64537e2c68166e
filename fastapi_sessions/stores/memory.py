"""`MemoryStore`: the embedded default. One process only."""

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json, to_json

from fastapi_sessions.exceptions import CorruptRecordError, SessionConfigError
from fastapi_sessions.stores._records import FORMAT_VERSION, decode_record
from fastapi_sessions.stores._url import Int, StoreUrl
from fastapi_sessions.stores.base import SessionStore, StoredSession, UpdateResult

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Entry:
    payload: bytes  # the session as JSON: nothing the application holds aliases what is stored
    version: int
    user_id: str | None
    expires_at: float
    format: int | None = FORMAT_VERSION


class MemoryStore(SessionStore):
    """Sessions in a dictionary of this process, bounded and expiring.

    Good for development, tests and single-process apps that can lose sessions on restart. Each
    worker process has its own store, so behind several workers or a load balancer a user is logged
    out whenever a request reaches another process: use Redis, PostgreSQL, MongoDB or SQLite there.

    Args:
        max_entries: At most this many sessions are kept. When full, expired sessions are swept
            (at most once per quarter of ``max_entries`` new sessions, so a full store still takes a
            new session in constant time on average), then the least recently used are evicted.
        clock: Returns the current time in seconds; tests inject their own.
    """

    in_process = True
    """No I/O: the library applies no timeout to its calls."""

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise SessionConfigError("MemoryStore max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._users: dict[str, set[str]] = {}
        self._sweep_every = max(max_entries // 4, 1)
        self._created_since_sweep = self._sweep_every  # the first insert into a full store sweeps

    @classmethod
    def from_url(cls, url: str) -> "MemoryStore":
        """Build from ``memory://`` or ``memory://?max_entries=50000``."""
        config = StoreUrl(url, "MemoryStore")
        options, _ = config.options({"max_entries": Int(minimum=1)})
        with config.building():
            return cls(**options)

    @property
    def location(self) -> str:
        return "this process's memory"

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key, entry)
            return None
        self._entries.move_to_end(key)
        return entry

    def _drop(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        if entry.user_id is not None:
            keys = self._users.get(entry.user_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._users[entry.user_id]

    def _read(self, operation: str, entry: _Entry) -> StoredSession:
        return decode_record(
            self,
            operation,
            data=entry.payload,
            version=entry.version,
            user_id=entry.user_id,
            format_version=entry.format,
            parse=from_json,
        )

    async def load(self, key: str) -> StoredSession | None:
        entry = self._live(key)
        if entry is None:
            return None
        return decode_record(
            self,
            "load",
            data=entry.payload,
            version=entry.version,
            user_id=entry.user_id,
            format_version=entry.format,
            parse=from_json,
        )  # `_read`, inlined: every request of a session comes here

    async def create(self, key: str, data: Mapping[str, Any], *, ttl: float, user_id: str | None) -> None:
        old = self._entries.get(key)
        if old is not None:
            self._drop(key, old)
        if len(self._entries) >= self.max_entries:
            self._make_room()
        self._entries[key] = _Entry(to_json(data), 1, user_id, self._clock() + ttl)
        self._created_since_sweep += 1
        if user_id is not None:
            self._users.setdefault(user_id, set()).add(key)

    def _make_room(self) -> None:
        # A sweep reads every entry; paid for by the quarter of max_entries inserts between two
        # sweeps, it costs O(1) per insert. In between, the least recently used entry goes.
        if self._created_since_sweep >= self._sweep_every:
            self._created_since_sweep = 0
            self.sweep()
        while len(self._entries) >= self.max_entries:
            key, entry = next(iter(self._entries.items()))
            self._drop(key, entry)

    async def update(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        removed: Collection[str] = (),
        ttl: float,
        expected_version: int | None = None,
    ) -> UpdateResult:
        entry = self._live(key)
        if entry is None:
            return UpdateResult.MISSING
        try:
            data = self._read("update", entry).data
        except CorruptRecordError:
            return UpdateResult.MISSING  # no session: the request that loaded it started a new one
        if expected_version is not None and entry.version != expected_version:
            return UpdateResult.CONFLICT
        data.update(changes)
        for name in removed:
            data.pop(name, None)
        entry.payload = to_json(data)
        entry.version += 1
        entry.expires_at = self._clock() + ttl
        return UpdateResult.UPDATED

    async def delete(self, key: str, *, user_id: str | None = None) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._drop(key, entry)
        return entry.expires_at > self._clock()

    async def delete_user_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        # No await between reading the index and the last delete: no replace runs in between.
        now = self._clock()
        deleted = 0
        for key in [key for key in self._users.get(user_id, ()) if key != keep]:
            entry = self._entries[key]
            self._drop(key, entry)
            deleted += entry.expires_at > now
        return deleted

    async def delete_user_session(self, user_id: str, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or entry.user_id != user_id:
            return False
        return await self.delete(key, user_id=user_id)

    async def user_keys(self, user_id: str) -> list[str]:
        return list(self._users.get(user_id, ()))

    async def cleanup(self) -> int:
        return self.sweep()

    async def count(self) -> int:
        """The live sessions of this process: one pass over every entry, expired ones included, removing none.

        Another process (another worker, or the command-line tool) has a store of its own and counts its own.
        """
        now = self._clock()
        return sum(1 for entry in self._entries.values() if entry.expires_at > now)

    def sweep(self) -> int:
        """Remove every expired entry now; how many."""
        now = self._clock()
        expired = [(key, entry) for key, entry in self._entries.items() if entry.expires_at <= now]
        for key, entry in expired:
            self._drop(key, entry)
        return len(expired)
