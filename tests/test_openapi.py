"""The OpenAPI schema lists the statuses the session layer answers on each route, and no more."""

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import RedirectResponse

from fastapi_sessions import AuthSession, MemoryStore, SessionManager
from tests.support import CountingStore, make_manager


def routes(sessions: SessionManager[AuthSession]) -> FastAPI:
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[AuthSession, Depends(sessions)]

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/read")
    async def read(session: Session) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/admin", dependencies=[Depends(sessions.require_roles("admin"))])
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/email", dependencies=[Depends(sessions.require_recent_auth(300))])
    async def email() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/form", dependencies=[Depends(sessions.require_csrf)])
    async def show_form() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/form", dependencies=[Depends(sessions.require_csrf)])
    async def send_form() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login", status_code=303, response_class=RedirectResponse)
    async def login(session: Session) -> RedirectResponse:
        session.login("1")
        return RedirectResponse("/me", status_code=303)

    @app.get("/own", responses={401: {"description": "Who are you?"}})
    async def own(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, bool]:
        return {"ok": True}

    guarded = APIRouter(dependencies=[Depends(sessions.require_auth)])

    @guarded.get("/health")
    @sessions.public
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @guarded.get("/second-factor")
    @sessions.public
    async def second_factor(
        session: Annotated[AuthSession, Depends(sessions.require_partial_auth)],
    ) -> dict[str, bool]:
        return {"ok": True}

    app.include_router(guarded)
    return app


def statuses(schema: dict[str, Any], path: str, method: str = "get") -> list[str]:
    return sorted(schema["paths"][path][method]["responses"])


def test_guarded_routes_declare_their_refusals() -> None:
    schema = routes(make_manager(AuthSession, MemoryStore())).openapi()
    assert statuses(schema, "/plain") == ["200"]
    assert statuses(schema, "/read") == ["200"]  # the memory store is never unavailable
    assert statuses(schema, "/me") == ["200", "401"]
    assert statuses(schema, "/admin") == ["200", "401", "403"]
    assert statuses(schema, "/email", "post") == ["200", "401", "403"]
    assert statuses(schema, "/form", "get") == ["200"]  # a safe method passes the CSRF check
    assert statuses(schema, "/form", "post") == ["200", "403"]
    assert statuses(schema, "/login", "post") == ["303"]
    me = schema["paths"]["/me"]["get"]
    assert me["responses"]["401"]["headers"] == {
        "WWW-Authenticate": {"schema": {"type": "string", "enum": ["Session"]}}
    }
    assert me["responses"]["401"]["content"]["application/json"]["schema"]["required"] == ["detail"]
    assert me["security"] == [{"SessionCookie": []}]
    assert schema["paths"]["/admin"]["get"]["responses"]["403"]["description"] == "Not enough privileges"
    assert schema["paths"]["/email"]["post"]["responses"]["403"]["description"] == "Recent authentication required"
    assert schema["paths"]["/form"]["post"]["responses"]["403"]["description"] == "CSRF check failed"
    assert schema["paths"]["/own"]["get"]["responses"]["401"] == {"description": "Who are you?"}


@pytest.mark.parametrize(("cookie_name", "scheme"), [("session", "SessionCookie"), ("admin", "SessionCookie-admin")])
def test_public_routes_declare_only_what_still_checks(cookie_name: str, scheme: str) -> None:
    schema = routes(make_manager(AuthSession, MemoryStore(), https_only=False, cookie_name=cookie_name)).openapi()
    health = schema["paths"]["/health"]["get"]
    assert sorted(health["responses"]) == ["200"] and "security" not in health
    second = schema["paths"]["/second-factor"]["get"]
    assert sorted(second["responses"]) == ["200", "401"] and second["security"] == [{scheme: []}]


class ServerStore(CountingStore):
    """A store that goes over the network, so it can be unavailable."""

    @property
    def in_process(self) -> bool:
        return False


def test_conflicts_and_an_unavailable_store_where_they_can_happen() -> None:
    sessions = make_manager(
        AuthSession, ServerStore(MemoryStore()), strict_updates=True, max_sessions_per_user=1, limit_policy="refuse"
    )
    schema = routes(sessions).openapi()
    assert statuses(schema, "/plain") == ["200"]
    assert statuses(schema, "/read") == ["200", "409", "503"]
    assert statuses(schema, "/health") == ["200", "409", "503"]  # the session still loads there
    unavailable = schema["paths"]["/read"]["get"]["responses"]["503"]
    assert unavailable["description"] == "Session store unavailable"
    assert unavailable["headers"] == {"Retry-After": {"schema": {"type": "integer"}}}
    conflict = schema["paths"]["/read"]["get"]["responses"]["409"]["description"]
    assert "SESSION_STRICT_UPDATES" in conflict and "SESSION_MAX_SESSIONS_PER_USER" in conflict
    only_limit = routes(make_manager(AuthSession, MemoryStore(), max_sessions_per_user=1, limit_policy="refuse"))
    assert "STRICT" not in only_limit.openapi()["paths"]["/me"]["get"]["responses"]["409"]["description"]


def test_the_schema_is_built_once_and_rebuilt_after_a_reset() -> None:
    app = routes(make_manager(AuthSession, MemoryStore()))
    first = app.openapi()
    assert app.openapi() is first
    app.openapi_schema = None
    assert statuses(app.openapi(), "/me") == ["200", "401"]
    sessions = make_manager(AuthSession, MemoryStore())
    later = FastAPI()
    sessions.install(later)
    assert "/late" not in later.openapi()["paths"]

    @later.get("/late", dependencies=[Depends(sessions.require_auth)])
    async def late() -> None: ...

    assert statuses(later.openapi(), "/late") == ["200", "401"]  # built again for the new route, and documented


def test_two_managers_document_their_own_routes() -> None:
    one = make_manager(AuthSession, MemoryStore(), cookie_name="__Host-one")
    two = make_manager(AuthSession, ServerStore(MemoryStore()), cookie_name="__Host-two")
    app = FastAPI()
    one.install(app)
    two.install(app)

    @app.get("/one")
    async def first(session: Annotated[AuthSession, Depends(one.require_auth)]) -> None: ...

    @app.get("/two")
    async def second(session: Annotated[AuthSession, Depends(two)]) -> None: ...

    schema = app.openapi()
    assert statuses(schema, "/one") == ["200", "401"]
    assert statuses(schema, "/two") == ["200", "503"]
