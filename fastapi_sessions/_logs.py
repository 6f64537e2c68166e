"""Client-controlled text made safe for a log line."""

from typing import Any

__all__ = ["lifecycle", "printable"]

_MAX_LENGTH = 512


def printable(value: str) -> str:
    """``value`` with every character that could break, forge or colour a log line escaped.

    Control characters (CR, LF, vertical tab, form feed, ESC, NEL), line and paragraph separators,
    format characters and lone surrogates become ``\\xNN``/``\\uNNNN`` escapes, and a backslash
    becomes two, so an escape in the log always means the client sent that character. Long values
    are cut to 512 characters.
    """
    if len(value) > _MAX_LENGTH:
        value = value[:_MAX_LENGTH] + "..."
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(_escape(char) for char in value)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def lifecycle(event: str, handle: str | None, user_id: str | None, reason: str | None) -> dict[str, Any]:
    """The ``extra=`` of a lifecycle log line: fields a structured formatter can read off the record.

    Each is prefixed ``session_`` so none collides with an attribute of `logging.LogRecord`. The
    handle is the store key (a hash of the session ID, never the ID).
    """
    return {"session_event": event, "session_handle": handle, "session_user_id": user_id, "session_reason": reason}
