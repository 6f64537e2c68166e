"""The hash layout of RedisStore, decoded without a server: the fast path agrees with the field-by-field one."""

import json
from typing import Any

import pytest

from fastapi_sessions import CorruptRecordError
from fastapi_sessions.stores.redis import RedisStore, RespClient
from fastapi_sessions.stores.redis._hash import decode_hash, encode_fields

STORE = RedisStore(RespClient())


def as_hash(data: dict[str, Any], **own: str) -> dict[bytes, bytes]:
    args = encode_fields(data)
    fields = {name.encode(): value.encode() for name, value in zip(args[::2], args[1::2], strict=True)}
    return {**fields, **{f":{name}".encode(): value.encode() for name, value in own.items()}}


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"a": 1, "b": [1, 2], "c": {"d": None}, "é": "ü"},
        {":v": "not the version", "::x": 1, "": 2},  # escaped names: the field-by-field path
    ],
)
def test_decodes_what_the_store_writes(data: dict[str, Any]) -> None:
    raw = as_hash(data, v="3", f="1", u="alice", x="123", g="0")
    loaded = decode_hash(STORE, "load", raw)
    assert loaded is not None and (loaded.data, loaded.version, loaded.user_id) == (data, 3, "alice")
    as_text = {name.decode(): value.decode() for name, value in raw.items()}  # a client with decode_responses
    assert decode_hash(STORE, "load", as_text) == loaded


@pytest.mark.parametrize(
    "value",
    [0, -12, 10**30, 1.5, 1796182819.9448607, 1e16, -0.0, float("inf"), float("nan"), True, None, 'é"', [{"a": 2}]],
)
def test_values_are_the_json_encoders_text(value: Any) -> None:
    assert encode_fields({"a": value}) == ["a", json.dumps(value, separators=(",", ":"), ensure_ascii=False)]


def test_a_name_holding_a_nul_is_read_field_by_field() -> None:
    loaded = decode_hash(STORE, "load", {b"a\0:b": b"1", b"c": b"2", b":v": b"1"})
    assert loaded is not None and loaded.data == {"a\0:b": 1, "c": 2} and loaded.user_id is None


def test_no_version_is_no_session() -> None:
    assert decode_hash(STORE, "load", {}) is None
    assert decode_hash(STORE, "load", {b"a": b"1"}) is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({b"\xff": b"1", b":v": b"1"}, "not UTF-8"),
        ({b"a": b"1", b":v": b"1", b":u": b"\xff"}, "not UTF-8"),
        ({b"a": b"1", b":v": b"one"}, "the version is not an integer"),
        ({b"a": b"1", b":v": b"1", b":f": b"one"}, "the format version is not an integer"),
        ({b"a": b"1", b":f": b"one"}, "the format version is not an integer"),
        ({b"a": b"{", b":v": b"1"}, "not JSON"),
        ({b"a": b"1,2", b":v": b"1"}, "not JSON"),
    ],
)
def test_corrupt_hashes(raw: dict[bytes, bytes], problem: str) -> None:
    with pytest.raises(CorruptRecordError, match=problem):
        decode_hash(STORE, "load", raw)
