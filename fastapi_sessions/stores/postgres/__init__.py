"""`PostgresStore`: sessions in a PostgreSQL table, through asyncpg (the ``postgres`` extra)."""

from fastapi_sessions.stores.base import missing_driver

try:
    import asyncpg  # noqa: F401 - the driver, checked before the store's modules need it
except ImportError:  # pragma: no cover - exercised by a test that hides the driver
    raise missing_driver("postgres", "asyncpg") from None

from fastapi_sessions.stores.postgres._store import PostgresStore as PostgresStore

__all__ = ["PostgresStore"]
