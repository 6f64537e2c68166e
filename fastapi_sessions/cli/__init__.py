"""The ``fastapi-sessions`` command: check the settings and the store, count, clean up, list and revoke sessions.

Installed as the ``fastapi-sessions`` console script, and run as ``python -m fastapi_sessions`` too. It
reads the same ``SESSION_*`` variables and ``.env`` file as the application; docs/cli.md describes
every command. Exit status: 0 success, 1 failure, 2 a usage error.
"""

from fastapi_sessions.cli._main import main as main

__all__ = ["main"]
