"""The security schemes guards declare in OpenAPI, and Swagger UI's "Try it out" on a CSRF-guarded route."""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from fastapi_sessions import AuthSession, MemoryStore, SessionManager
from tests.support import client, make_manager

COOKIE = {"type": "apiKey", "in": "cookie", "name": "__Host-session", "description": "Session cookie set by logging in"}
HEADER = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Auth-Token",
    "description": "Session token from the X-Auth-Token header of the response that logged in",
}
CSRF = {
    "type": "apiKey",
    "in": "header",
    "name": "X-CSRF-Token",
    "description": "The session's CSRF token (session.csrf_token), for unsafe requests that carry the session cookie",
}


def build(**overrides: Any) -> tuple[FastAPI, SessionManager[AuthSession]]:
    sessions = make_manager(AuthSession, MemoryStore(), **overrides)
    app = FastAPI()
    sessions.install(app)
    Session = Annotated[AuthSession, Depends(sessions)]

    @app.post("/login")
    async def login(session: Session) -> dict[str, bool]:
        session.login("alice")
        return {"ok": True}

    @app.get("/csrf")
    async def csrf(session: Session) -> dict[str, str]:
        return {"csrf_token": session.csrf_token}

    @app.get("/me")
    async def me(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.post("/notes", dependencies=[Depends(sessions.require_csrf)])
    async def add_note(note: dict[str, str]) -> dict[str, str]:
        return note

    return app, sessions


@pytest.mark.parametrize(
    ("transport", "schemes", "me", "notes"),
    [
        ("cookie", {"SessionCookie": COOKIE, "CsrfToken": CSRF}, ["SessionCookie"], ["SessionCookie", "CsrfToken"]),
        ("header", {"SessionHeader": HEADER}, ["SessionHeader"], ["SessionHeader"]),
        (
            "both",
            {"SessionCookie": COOKIE, "SessionHeader": HEADER, "CsrfToken": CSRF},
            ["SessionCookie", "SessionHeader"],
            ["SessionCookie", "SessionHeader", "CsrfToken"],
        ),
    ],
)
def test_schemes_follow_the_transport(transport: str, schemes: dict[str, Any], me: list[str], notes: list[str]) -> None:
    app, _ = build(transport=transport)
    schema = app.openapi()
    declared = schema["components"]["securitySchemes"]
    if transport != "header":
        declared["SessionCookie"]["description"] = COOKIE["description"]  # one of the guards' descriptions
    assert declared == schemes
    assert schema["paths"]["/me"]["get"]["security"] == [{name: []} for name in me]
    assert schema["paths"]["/notes"]["post"]["security"] == [{name: []} for name in notes]
    assert "security" not in schema["paths"]["/csrf"]["get"]
    # The schemes are no parameters of the operation: Swagger UI's Authorize dialog takes them.
    assert "parameters" not in schema["paths"]["/notes"]["post"]


def test_swagger_ui_try_it_out_passes_the_csrf_guard() -> None:
    app, _ = build()
    with client(app) as swagger:  # the browser running Swagger UI: same origin, its own cookie jar
        assert "swagger-ui" in swagger.get("/docs").text
        swagger.post("/login")
        token = swagger.get("/csrf").json()["csrf_token"]
        # What fetch() sends for "Try it out" once CsrfToken is authorized: the browser adds the cookie
        # and, on a POST, Origin (and Referer: the docs page).
        sent = {
            "origin": "https://testserver",
            "referer": "https://testserver/docs",
            "accept": "application/json",
            "x-csrf-token": token,
        }
        response = swagger.post("/notes", json={"text": "hi"}, headers=sent)
        assert response.status_code == 200, response.text
        assert response.json() == {"text": "hi"}
        assert swagger.post("/notes", json={"text": "hi"}, headers={**sent, "x-csrf-token": "stale"}).status_code == 403
        unauthorized = {name: value for name, value in sent.items() if name != "x-csrf-token"}
        assert swagger.post("/notes", json={"text": "hi"}, headers=unauthorized).status_code == 403
        cross_origin = {**sent, "origin": "https://evil.example"}
        assert swagger.post("/notes", json={"text": "hi"}, headers=cross_origin).status_code == 403
