"""A server-rendered web app on fastapi_sessions: login with "remember me", a cart, your devices, step-up, admin.

Serve it with ``./scripts/demo`` (or ``uvicorn examples.webapp.app:app``); `examples.webapp.app.create_app`
builds a fresh one, as the tests do.
"""
