"""``python -m fastapi_sessions``: the ``fastapi-sessions`` command."""

from fastapi_sessions.cli import main

raise SystemExit(main())
