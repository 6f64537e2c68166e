"""Whether a request's path lies inside the session cookie's ``Path``, as a browser decides it (RFC 6265 5.1.4)."""

from starlette.types import Scope

__all__ = ["browser_path", "path_matches"]


def browser_path(scope: Scope) -> str:
    """The path the browser requested: the app's mount point (``root_path``) and the path within it."""
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and not path.startswith(root):
        return root + path  # a server that strips the mount point (``uvicorn --root-path``)
    return path


def path_matches(request_path: str, cookie_path: str) -> bool:
    """Whether a browser sends a cookie of ``cookie_path`` with a request for ``request_path``."""
    if cookie_path == "/" or request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
