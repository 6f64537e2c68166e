"""How a backend plants records its store cannot read, for ``tests/contract/test_corrupt_records.py``.

A backend declares a `Corruptions` as ``extra["corruptions"]`` of its `tests.support.Backend`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi_sessions import SessionStore

FUTURE = "future-format"
"""The corruption every backend knows: the record says format version `FUTURE_VERSION`."""

FUTURE_VERSION = 99


@dataclass(frozen=True)
class Corruptions:
    """Ways to spoil the record under a key of an opened store, in place, as a bug or a hand edit would.

    Attributes:
        corrupt: ``corrupt(store, key, how)`` spoils the existing record under ``key`` (its user's
            index still names it), for each ``how`` in `hows` and for `FUTURE`.
        hows: The ways that leave a record no release can read.
        strip_format: Removes the record's format version, as the release before format versions wrote it.
        cleanup_removes: The store's `cleanup` deletes records no release can read.
    """

    corrupt: Callable[[SessionStore, str, str], Awaitable[None]]
    hows: tuple[str, ...]
    strip_format: Callable[[SessionStore, str], Awaitable[None]]
    cleanup_removes: bool = False


def unknown(how: str) -> AssertionError:
    return AssertionError(f"no corruption {how!r} for this backend")
