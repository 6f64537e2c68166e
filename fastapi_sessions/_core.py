"""`SessionCore`: the small set of parts a request's session, the guards and the middleware work with."""

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi_sessions._cookies import CookieReader, CookieWriter
from fastapi_sessions._events import EventHub
from fastapi_sessions._gateway import StoreGateway
from fastapi_sessions._merge import Schema
from fastapi_sessions._policy import SessionPolicy
from fastapi_sessions._registry import UserSessions
from fastapi_sessions._telemetry import Telemetry
from fastapi_sessions.model import SessionModel
from fastapi_sessions.settings import SessionSettings
from fastapi_sessions.signing import CookieSigner

__all__ = ["SessionCore"]


@dataclass(frozen=True, slots=True, eq=False)
class SessionCore:
    """The parts of one `SessionManager`, built once by it and handed to what serves each request.

    Attributes:
        model_cls: The application's session model.
        settings: The settings.
        policy: Time, size and encoding rules.
        gateway: The store, under its deadline.
        signer: Signs and verifies cookie values.
        cookie_reader: Finds the session cookie in a request.
        cookie_writer: Builds its ``Set-Cookie`` headers.
        users: Per-user session control.
        scope_key: Where a request's session lives in its ASGI scope.
        field_schemas: How each model field merges with a concurrent change (`schema_of_model`).
        events: The lifecycle listeners.
        telemetry: Spans and metrics.
    """

    model_cls: type[SessionModel]
    settings: SessionSettings
    policy: SessionPolicy
    gateway: StoreGateway
    signer: CookieSigner
    cookie_reader: CookieReader
    cookie_writer: CookieWriter
    users: UserSessions
    scope_key: str
    field_schemas: Mapping[str, Schema]
    events: EventHub
    telemetry: Telemetry
