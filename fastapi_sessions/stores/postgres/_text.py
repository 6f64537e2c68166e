"""Text for PostgreSQL: jsonb and text columns cannot hold U+0000, so such strings are escaped, reversibly."""

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["dumps", "escape_text", "loads", "stored_user", "unescape_text", "user_of"]

# jsonb and text cannot hold U+0000. Strings containing it (or the escape character itself) are
# stored with U+0000 as ESC "0" and ESC as ESC "1"; every other string is stored as it is.
_ESC = "\ue000"
_ESCAPED = re.compile(_ESC + "([01])")


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


def dumps(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in text or _ESC in text:
        text = json.dumps(_walk(data, escape_text), separators=(",", ":"), ensure_ascii=False)
    return text


def loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return _walk(data, unescape_text) if _ESC in text else data


def stored_user(user_id: str | None) -> str | None:
    return None if user_id is None else escape_text(user_id)


def user_of(stored: str | None) -> str | None:
    return None if stored is None else unescape_text(stored)
