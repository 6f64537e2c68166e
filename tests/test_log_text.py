"""Client-controlled text in a log line: escaped so it cannot break, forge or colour the line."""

import pytest

from fastapi_sessions._logs import printable


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("/plain/path", "/plain/path"),
        ("a\nb", "a\\x0ab"),
        ("a\x0bb\x0c", "a\\x0bb\\x0c"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("next\x85line", "next\\x85line"),
        ("line\u2028sep", "line\\u2028sep"),
        ("lone\ud800", "lone\\ud800"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("back\\slash", "back\\\\slash"),
        ("café", "café"),
    ],
)
def test_every_unprintable_character_is_escaped(text: str, logged: str) -> None:
    assert printable(text) == logged


def test_a_long_value_is_cut() -> None:
    assert printable("x" * 10_000) == "x" * 512 + "..."
