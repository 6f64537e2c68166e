"""The records stores keep: their format version, and the checks that turn a raw record into a `StoredSession`."""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi_sessions.exceptions import CorruptRecordError
from fastapi_sessions.stores.base import SessionStore, StoredSession, log_skipped

__all__ = ["FORMAT_VERSION", "corrupt_record", "decode_record", "readable"]

T = TypeVar("T")

FORMAT_VERSION = 1
"""The layout of the records this release writes; each store keeps it with every record it writes.

A record without one was written by a release before format versions, in this same layout, and reads as
version 1. A record of a version this release does not know (written by a newer one) is a
`CorruptRecordError` to `load`, and is left in place for the release that wrote it.
"""


def corrupt_record(store: SessionStore, operation: str, problem: str) -> CorruptRecordError:
    """The error for a record ``store`` found during ``operation`` and cannot read.

    Args:
        store: The store; the message names it and its location.
        operation: What was attempted, e.g. ``load``.
        problem: What is wrong, e.g. ``the data is not JSON``: never a value from the record, which
            may hold anything, including what the application keeps secret.
    """
    return CorruptRecordError(
        f"{type(store).__name__}: {operation} at {store.location} found a record it cannot read: {problem}"
    )


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES.items() if isinstance(value, kind)), type(value).__name__)


def decode_record(
    store: SessionStore,
    operation: str,
    *,
    data: Any,
    version: Any,
    user_id: Any,
    format_version: Any = None,
    parse: Callable[[Any], Any] | None = None,
) -> StoredSession:
    """The `StoredSession` of a record's parts as the store read them, each checked.

    Args:
        store: The store that read them, for the message.
        operation: What was attempted, e.g. ``load``.
        data: The fields: a ``dict``, or the stored text that ``parse`` turns into one.
        version: The version, an ``int``.
        user_id: The user ID, a ``str`` or ``None``.
        format_version: The record's format version; ``None`` (none stored) is version 1.
        parse: Turns ``data`` into the fields (``json.loads``); its ``ValueError`` means not JSON.

    Raises:
        CorruptRecordError: a part is missing or of the wrong type, or the format version is unknown.
    """
    if format_version is not None and format_version is not FORMAT_VERSION:  # the small int, one object
        if not _is_integer(format_version):
            raise corrupt_record(store, operation, f"its format version is {_kind(format_version)}, not an integer")
        if format_version != FORMAT_VERSION:
            raise corrupt_record(store, operation, f"format version {format_version} is not one this release reads")
    if parse is not None:
        try:
            data = parse(data)
        except (ValueError, TypeError, RecursionError):
            raise corrupt_record(store, operation, "the data is not JSON text") from None
    if type(data) is not dict and not isinstance(data, dict):
        raise corrupt_record(store, operation, f"the data is {_kind(data)}, not an object")
    if type(version) is not int and not _is_integer(version):
        raise corrupt_record(store, operation, f"the version is {_kind(version)}, not an integer")
    if user_id is not None and not isinstance(user_id, str):
        raise corrupt_record(store, operation, f"the user ID is {_kind(user_id)}, not a string")
    return StoredSession(data, version, user_id)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def readable(decode: Callable[[T], StoredSession | None], raw: T) -> StoredSession | None:
    """``decode(raw)``, or ``None`` and a log line when it raises `CorruptRecordError`: for `SessionStore.load_many`."""
    try:
        return decode(raw)
    except CorruptRecordError as exc:
        log_skipped(exc)
        return None
