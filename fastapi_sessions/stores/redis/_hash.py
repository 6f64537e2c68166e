"""A session as a Redis hash: the field names, the HSET arguments of its data, and reading it back from HGETALL.

A field per data field, its value as JSON; the store's own fields begin with ``:`` (``:v`` version,
``:f`` format version, ``:u`` user ID, ``:x`` and ``:g`` bookkeeping), and a data name that begins
with ``:`` is stored with one more.
"""

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json
from redis.exceptions import ResponseError

from fastapi_sessions.stores._records import corrupt_record, decode_record
from fastapi_sessions.stores.base import SessionStore, StoredSession

__all__ = ["decode_hash", "encode_fields", "field_name", "wrong_type"]

_json_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_json_decode = from_json  # pydantic-core's parser: faster than json.loads on the bytes hiredis returns

# The store's own fields, as the built-in client and redis-py (without decode_responses) name them.
_RESERVED = (b":v", b":f", b":u", b":x", b":g")

# What a hash holds: its data names, its data values as the text of one JSON array, its version, its
# format version and its user ID (the last three as stored; the user ID as text).
_Fields = tuple[list[str], bytes | str, Any, Any, str | None]


def field_name(name: str) -> str:
    """The hash field of data field ``name``: names beginning with ':' are the store's own, so one gets one more."""
    return ":" + name if name.startswith(":") else name


def encode_fields(data: Mapping[str, Any]) -> list[str]:
    """``data`` as HSET's arguments: field, JSON value, field, JSON value..."""
    args: list[str] = []
    for name, value in data.items():
        args.append(field_name(name))
        args.append(_json_text(value))
    return args


def _json_text(value: Any) -> str:
    # The encoder's own text for an int or a finite float (its repr), without the encoder's set-up per
    # call, which costs several times the repr: most values a request writes (counters, times) are these.
    kind = type(value)
    if kind is str:
        return _json_encode(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _json_encode(value)


def wrong_type(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis saying the key holds another type of value than a hash."""
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def decode_hash(store: SessionStore, operation: str, raw: Mapping[Any, Any] | BaseException) -> StoredSession | None:
    """The session in the reply to HGETALL: a hash of the store's fields, or an error for a key of another type.

    Raises:
        CorruptRecordError: the key holds another type, or the hash a field the store cannot read.
    """
    if isinstance(raw, BaseException):
        if wrong_type(raw):
            raise corrupt_record(store, operation, "the key holds another type of Redis value than a hash")
        raise raw
    if not raw:  # no key
        return None
    parts = _split(raw)
    if parts is None:
        parts = _split_one_by_one(store, operation, raw)
        if parts is None:
            return None
    names, joined, version, format_version, user_id = parts
    return decode_record(
        store,
        operation,
        data=joined,
        version=_integer(store, operation, version, "version"),
        user_id=user_id,
        format_version=None if format_version is None else _integer(store, operation, format_version, "format version"),
        parse=lambda text: dict(zip(names, _json_decode(text), strict=True)),
    )


def _split(raw: Mapping[Any, Any]) -> _Fields | None:
    """`_split_one_by_one` in a few calls into C, for a hash as the store writes it.

    ``None`` for anything else (names as ``str``; a data name that is escaped, not UTF-8 or holds a NUL;
    no version), which `_split_one_by_one` then reads, or reports as corrupt.
    """
    version = raw.get(b":v")
    if version is None:
        return None
    fields = dict(raw)
    for name in _RESERVED:
        fields.pop(name, None)
    try:
        user_id = _text(raw.get(b":u"))
        if not fields:
            return [], "[]", version, raw.get(b":f"), user_id
        blob = b"\0" + b"\0".join(fields)  # each name after a NUL: one beginning with ':' shows as NUL ':'
        if b"\0:" in blob:
            return None
        names = blob.decode()[1:].split("\0")
    except UnicodeDecodeError:
        return None
    if len(names) != len(fields):  # a name holding a NUL
        return None
    return names, b"[" + b",".join(fields.values()) + b"]", version, raw.get(b":f"), user_id


def _split_one_by_one(store: SessionStore, operation: str, raw: Mapping[Any, Any]) -> _Fields | None:
    """The parts of any hash, field by field; ``None`` for a hash the store did not write (no version)."""
    names: list[str] = []
    values: list[Any] = []
    version: Any = None
    format_version: Any = None
    user_id: Any = None
    try:
        for field, value in raw.items():  # reserved fields other than these are bookkeeping (':x')
            name = field.decode() if isinstance(field, bytes) else field
            if not name.startswith(":"):
                names.append(name)
                values.append(value)
            elif name.startswith("::"):
                names.append(name[1:])
                values.append(value)
            elif name == ":v":
                version = value
            elif name == ":f":
                format_version = value
            elif name == ":u":
                user_id = value.decode() if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        raise corrupt_record(store, operation, "a field name or the user ID is not UTF-8 text") from None
    if version is None:  # a hash the store did not write: no session, unless what it says of its format is wrong
        if format_version is not None:
            _integer(store, operation, format_version, "format version")
        return None
    return names, _json_array(values), version, format_version, user_id


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _json_array(values: list[Any]) -> bytes | str:
    """JSON texts (all bytes or all str) as the text of one array: one call into the parser, not one per field."""
    if not values:
        return "[]"
    if isinstance(values[0], bytes):
        return b"[" + b",".join(values) + b"]"
    return "[" + ",".join(values) + "]"


def _integer(store: SessionStore, operation: str, value: bytes | str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise corrupt_record(store, operation, f"the {what} is not an integer") from None
