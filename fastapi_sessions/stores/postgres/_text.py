"""Text for PostgreSQL: jsonb and text columns cannot hold U+0000, so such strings are escaped, reversibly.

The stored document also holds the record's format version under `FORMAT_FIELD`; a field name that
begins with ``:`` is stored with one more, so no field reaches it.
"""

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "FORMAT_FIELD",
    "dumps",
    "escape_text",
    "field_name",
    "loads",
    "record",
    "stored_user",
    "unescape_text",
    "user_of",
]

FORMAT_FIELD = ":f"

# jsonb and text cannot hold U+0000. Strings containing it (or the escape character itself) are
# stored with U+0000 as ESC "0" and ESC as ESC "1"; every other string is stored as it is.
_ESC = "\ue000"
_ESCAPED = re.compile(_ESC + "([01])")


# One encoder and decoder for every call: json.dumps with options builds a new encoder each time.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


def escape_text(value: str) -> str:
    if "\x00" not in value and _ESC not in value:
        return value
    return value.replace(_ESC, _ESC + "1").replace("\x00", _ESC + "0")


def unescape_text(value: str) -> str:
    if _ESC not in value:
        return value
    return _ESCAPED.sub(lambda match: "\x00" if match[1] == "0" else _ESC, value)


def _walk(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, dict):
        return {convert(name): _walk(item, convert) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, convert) for item in value]
    return value


def field_name(name: str) -> str:
    """The name a field is stored under: escaped, and clear of the store's own ``:`` names."""
    name = escape_text(name)
    return ":" + name if name.startswith(":") else name


def dumps(data: Mapping[str, Any]) -> str:
    """The fields as a JSON object, to store or merge into a stored one."""
    if any(name.startswith(":") for name in data):
        data = {field_name(name) if name.startswith(":") else name: value for name, value in data.items()}
    text = _encode(data)
    if "\\u0000" in text or _ESC in text:
        text = _encode(_walk(data, escape_text))
    return text


def record(data: Mapping[str, Any], format_version: int) -> str:
    """A whole record's document: its fields and its format version."""
    text = dumps(data)
    return (
        f'{{"{FORMAT_FIELD}":{format_version},{text[1:]}' if len(text) > 2 else f'{{"{FORMAT_FIELD}":{format_version}}}'
    )


def loads(text: str) -> tuple[Any, Any]:
    """The stored document's fields and its format version (``None`` if it has none), unless it is corrupt.

    The format version is taken out before names are unescaped, so a field stored as ``::f`` never
    takes its place.
    """
    data = _decode(text)
    if not isinstance(data, dict):
        return data, None
    format_version = data.pop(FORMAT_FIELD, None)
    if _ESC in text:
        data = _walk(data, unescape_text)
    # A name stored with a second ":" shows as '"::' in the text; a value may too, which costs a look.
    if '"::' in text and any(name.startswith("::") for name in data):
        data = {name[1:] if name.startswith("::") else name: value for name, value in data.items()}
    return data, format_version


def stored_user(user_id: str | None) -> str | None:
    return None if user_id is None else escape_text(user_id)


def user_of(stored: str | None) -> str | None:
    return None if stored is None else unescape_text(stored)
