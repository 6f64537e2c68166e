"""The answers the session layer can give on a route, written into the app's OpenAPI schema.

FastAPI lets a dependency add a security requirement but no responses, so `SessionManager.install`
wraps ``app.openapi``: once FastAPI has built the schema, each route that reaches this manager's
session (through ``Depends(sessions)`` or a guard, at any depth) gets the statuses it can answer.
A response the route declares itself is left as it is.
"""

from collections.abc import Callable, Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.routing import APIRoute

from fastapi_sessions._core import SessionCore
from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.guards import CsrfGuard, SessionGuard, is_exempt_on, reachable

__all__ = ["document_session_responses", "session_responses"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        }
    }
}


def document_session_responses(app: FastAPI, core: SessionCore, dependency: object) -> None:
    """Make ``app.openapi()`` list, on each route using ``core``'s sessions, the statuses they can answer.

    Args:
        app: The app being installed.
        core: The manager's parts, which its guards carry.
        dependency: The manager itself, used as ``Depends(sessions)``.
    """
    build: Callable[[], dict[str, Any]] = app.openapi
    documented: list[dict[str, Any]] = []  # the schema last written into; FastAPI rebuilds it when routes change

    def openapi() -> dict[str, Any]:
        schema = build()
        if documented and documented[0] is schema:
            return schema
        for route in _api_routes(app):
            if route.include_in_schema:
                for method in route.methods or ():
                    operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        _document(operation, route, method, core, dependency)
        documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes, those of included routers with the router's dependencies among theirs."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # pragma: no cover  # FastAPI before lazy router inclusion: app.routes holds them all
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _document(operation: dict[str, Any], route: Any, method: str, core: SessionCore, dependency: object) -> None:
    calls = reachable(route.dependant)
    guards = [call for call in calls if isinstance(call, SessionGuard | CsrfGuard)]
    checking = [guard for guard in guards if not is_exempt_on(route.endpoint, guard)]
    if guards and not checking and "security" in operation:
        # A public route: the guards of its ``dependencies`` do not check anything there.
        exempt = {guard.scheme_name for guard in guards}
        operation["security"] = [item for item in operation["security"] if exempt.isdisjoint(item)]
        if not operation["security"]:
            del operation["security"]
    uses_session = any(call is dependency for call in calls) or any(guard.core is core for guard in guards)
    if not uses_session:
        return
    own = [guard for guard in checking if guard.core is core]
    responses = operation.setdefault("responses", {})
    for status, answer in session_responses(own, method, core).items():
        responses.setdefault(str(status), answer)


def session_responses(
    guards: list[SessionGuard[Any] | CsrfGuard[Any]], method: str, core: SessionCore
) -> dict[int, dict[str, Any]]:
    """The OpenAPI responses of a route that loads a session of ``core`` and is checked by ``guards``."""
    responses: dict[int, dict[str, Any]] = {}
    session_guards = [guard for guard in guards if isinstance(guard, SessionGuard)]
    if session_guards:
        responses[401] = {
            "description": "Not authenticated, or authentication incomplete (a factor is pending)",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Session"]}}},
            "content": _ERROR_BODY,
        }
    refusals = []
    if any(guard.roles for guard in session_guards):
        refusals.append("Not enough privileges")
    if any(guard.max_auth_age is not None for guard in session_guards):
        refusals.append("Recent authentication required")
    if method not in _SAFE_METHODS and any(isinstance(guard, CsrfGuard) for guard in guards):
        refusals.append("CSRF check failed")
    if refusals:
        responses[403] = {"description": "; ".join(refusals), "content": _ERROR_BODY}
    try:
        core.build()  # the 409 and 503 depend on the settings; a schema rendered before startup may lack them
    except (SessionConfigError, ImportError):
        return responses
    settings = core.settings
    if settings.strict_updates or (settings.max_sessions_per_user is not None and settings.limit_policy == "refuse"):
        reasons = []
        if settings.strict_updates:
            reasons.append("another request changed the same session field first (SESSION_STRICT_UPDATES)")
        if settings.max_sessions_per_user is not None and settings.limit_policy == "refuse":
            reasons.append("a login beyond SESSION_MAX_SESSIONS_PER_USER")
        responses[409] = {"description": "Session conflict: " + "; ".join(reasons), "content": _ERROR_BODY}
    if not core.gateway.store.in_process:
        responses[503] = {
            "description": "Session store unavailable",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": _ERROR_BODY,
        }
    return responses
