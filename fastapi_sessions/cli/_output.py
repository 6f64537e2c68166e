"""What the commands print: a user's sessions as a table or as JSON, and counts in words."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi_sessions._logs import printable
from fastapi_sessions._registry import SessionInfo

__all__ = ["counted", "sessions_json", "sessions_table"]

_COLUMNS = ("HANDLE", "CREATED (UTC)", "LAST SEEN (UTC)", "IP", "USER AGENT")


def counted(number: int, thing: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def sessions_table(infos: Sequence[SessionInfo]) -> str:
    """The sessions as aligned columns under a header, one line each.

    The user agent and IP are text a client chose: control characters are escaped, so a line of the
    table is never a terminal escape sequence.
    """
    rows = [_COLUMNS] + [
        (
            info.handle,
            _time(info.created_at),
            _time(info.last_seen),
            printable(info.ip) if info.ip is not None else "-",
            printable(info.user_agent) if info.user_agent is not None else "-",
        )
        for info in infos
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]) for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def sessions_json(infos: Sequence[SessionInfo]) -> str:
    """The sessions as a JSON array of objects, times in ISO 8601 with their UTC offset."""
    items: list[dict[str, Any]] = [
        {
            "handle": info.handle,
            "created_at": info.created_at.isoformat(),
            "last_seen": info.last_seen.isoformat(),
            "ip": info.ip,
            "user_agent": info.user_agent,
        }
        for info in infos
    ]
    return json.dumps(items, indent=2) + "\n"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
