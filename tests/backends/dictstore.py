"""The DictStore of docs/writing-a-store.md, for the contract suite: a store written from the guide."""

import pytest

from fastapi_sessions import SessionStore
from tests.backends._docs import example_namespace
from tests.support import Backend

BACKENDS = ["dictstore"]

DictStore = example_namespace("writing-a-store.md", "DictStore")["DictStore"]


async def age(store: SessionStore, key: str, seconds: float) -> None:
    """The record under ``key`` made ``seconds`` older, as time passing would: no test sleeps."""
    record = store._records.get(key)  # type: ignore[attr-defined]
    if record is not None:
        record.deadline -= seconds


async def dump(store: SessionStore) -> str:
    """Everything the store holds, as text: the suite checks the raw session ID is not in it."""
    return repr(store._records)  # type: ignore[attr-defined]


@pytest.fixture
def backend_dictstore() -> Backend:
    return Backend("dictstore", DictStore, age=age, dump=dump)
