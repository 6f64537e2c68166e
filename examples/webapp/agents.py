"""Names a person recognises for a ``User-Agent`` header: "Firefox 128 on Windows"."""

import re

__all__ = ["describe_agent"]

# Checked in order: Edge and Opera also say Chrome, Chrome also says Safari, Android also says Linux.
_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Headless Chrome", re.compile(r"HeadlessChrome/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|Chromium|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
    ("curl", re.compile(r"^curl/(\d+)")),
)
_SYSTEMS = (
    ("Windows", "Windows NT"),
    ("Android", "Android"),
    ("iOS", "iPhone"),
    ("iPadOS", "iPad"),
    ("ChromeOS", "CrOS"),
    ("macOS", "Mac OS X"),
    ("Linux", "Linux"),
)


def describe_agent(user_agent: str | None) -> str:
    """The browser, its major version and the operating system named by ``user_agent``, as far as known."""
    if not user_agent:
        return "Unknown device"
    browser = next(
        (f"{name} {match[1]}" for name, pattern in _BROWSERS if (match := pattern.search(user_agent))),
        "Unknown browser",
    )
    system = next((name for name, marker in _SYSTEMS if marker in user_agent), None)
    return f"{browser} on {system}" if system else browser
