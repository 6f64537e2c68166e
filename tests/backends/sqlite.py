"""The SQLite store, for the contract and HTTP suites: a database file of its own per test."""

from pathlib import Path

import pytest

from fastapi_sessions.stores.sqlite import SQLiteStore
from tests.support import Backend

BACKENDS = ["sqlite"]


@pytest.fixture
def backend_sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "sessions.db"
    url = f"sqlite:///{path}?cleanup_interval=0"
    return Backend("sqlite", lambda: SQLiteStore.from_url(url), url=url, extra={"path": path})
