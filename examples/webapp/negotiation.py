"""Whether a request wants a web page or JSON, from its ``Accept`` header."""

__all__ = ["prefers_html"]


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prefers_html(accept: str) -> bool:
    """Whether ``accept`` names HTML, and ranks it at least as high as JSON.

    A browser navigating sends ``text/html,...,*/*;q=0.8``: HTML. An API client sends
    ``application/json`` or ``*/*`` (curl, httpx), which names no HTML: JSON.
    """
    html = json = 0.0
    wildcard = 0.0
    for media_range in accept.split(","):
        media_type, *parameters = media_range.split(";")
        media_type = media_type.strip().lower()
        quality = _quality(parameters)
        if media_type in ("text/html", "application/xhtml+xml", "text/*"):
            html = max(html, quality)
        elif media_type == "application/json":
            json = max(json, quality)
        elif media_type == "*/*":
            wildcard = max(wildcard, quality)
    return html > 0 and html >= max(json, wildcard)
