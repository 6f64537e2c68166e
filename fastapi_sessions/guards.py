"""Guard dependencies: authentication, roles, step-up and CSRF, each returning the typed session."""

import importlib.util
import inspect
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN, WS_1008_POLICY_VIOLATION

from fastapi_sessions._core import SessionCore
from fastapi_sessions._logs import printable
from fastapi_sessions._request import RequestSession
from fastapi_sessions.exceptions import SessionConfigError
from fastapi_sessions.model import AuthSession, ModelT

__all__ = ["SCHEME_NAME", "CsrfGuard", "SessionGuard", "is_exempt_on", "public", "reachable"]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("fastapi_sessions")

_MULTIPART = any(importlib.util.find_spec(name) is not None for name in ("python_multipart", "multipart"))
_MAX_FORM_FIELDS = 1000
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART_FORM = "multipart/form-data"
_PUBLIC_ATTRIBUTE = "__fastapi_sessions_public__"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SCHEME_NAME = "SessionCookie"
# OpenAPI component names match ^[a-zA-Z0-9._-]+$; a cookie name may hold other characters.
_NOT_IN_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")
HEADER_SCHEME_NAME = "SessionHeader"
CSRF_SCHEME_NAME = "CsrfToken"


def public(endpoint: F) -> F:
    """Exempt a route from the session guards applied through ``dependencies=[...]``.

    Guards listed in the ``dependencies`` of the app, a router or the route are skipped; a guard the
    endpoint depends on, as one of its own parameters or through a dependency of its at any depth,
    still applies. So a second-factor page can be public under an app-wide
    `SessionManager.require_auth` and still ask for `SessionManager.require_partial_auth`. Put it
    below the route decorator::

        app = FastAPI(dependencies=[Depends(sessions.require_auth)])

        @app.get("/health")
        @sessions.public
        async def health() -> dict[str, str]: ...
    """
    setattr(endpoint, _PUBLIC_ATTRIBUTE, frozenset(map(id, reachable(get_dependant(path="", call=endpoint)))))
    return endpoint


def reachable(dependant: Dependant) -> list[Any]:
    """Every callable ``dependant`` depends on, at any depth (through ``Depends`` and ``Security``)."""
    found: list[Any] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop()
        if sub.call is not None and all(sub.call is not seen for seen in found):
            found.append(sub.call)
            pending.extend(sub.dependencies)
    return found


def _exempt(connection: HTTPConnection, guard: object) -> bool:
    """Whether ``guard`` is skipped on this request's route."""
    return is_exempt_on(connection.scope.get("endpoint"), guard)


def is_exempt_on(endpoint: object, guard: object) -> bool:
    """Whether ``guard`` is skipped on ``endpoint``: it is `public` and does not itself depend on the guard."""
    own: frozenset[int] | None = getattr(endpoint, _PUBLIC_ATTRIBUTE, None)
    return own is not None and id(guard) not in own


def _deny(connection: HTTPConnection, status_code: int, detail: str) -> Exception:
    if connection.scope["type"] == "websocket":
        return WebSocketException(code=WS_1008_POLICY_VIOLATION, reason=detail)
    headers = {"WWW-Authenticate": "Session"} if status_code == HTTP_401_UNAUTHORIZED else None
    return HTTPException(status_code=status_code, detail=detail, headers=headers)


def _scheme_name_for(cookie_name: str) -> str:
    """The OpenAPI security scheme name of a session cookie, distinct for each cookie name.

    ``SessionCookie`` for the default cookie (``session``, ``__Host-session``); ``SessionCookie-<name>``,
    without the ``__Host-`` or ``__Secure-`` prefix, for another, so that two managers of one app
    (a site and its admin area) show two schemes.
    """
    stem = cookie_name.removeprefix("__Host-").removeprefix("__Secure-")
    if stem == "session":
        return SCHEME_NAME
    return f"{SCHEME_NAME}-{_NOT_IN_COMPONENT_NAME.sub('_', stem)}"


class _HeaderScheme(SecurityBase):
    """An ``apiKey`` header a guard declares besides its own scheme, so OpenAPI shows it and Swagger UI sends it.

    As a dependency it does nothing: the guard reads the request itself.
    """

    def __init__(self, scheme_name: str, header: str, description: str) -> None:
        self.model = APIKey(**{"in": APIKeyIn.header}, name=header, description=description)
        self.scheme_name = scheme_name

    async def __call__(self) -> None:
        return None


_CSRF_TOKEN = _HeaderScheme(
    CSRF_SCHEME_NAME,
    "X-CSRF-Token",
    "The session's CSRF token (session.csrf_token), for unsafe requests that carry the session cookie",
)


class _CookieScheme(SecurityBase, Generic[ModelT]):
    """Shows how the session token travels as ``apiKey`` security schemes in the OpenAPI schema.

    The guard's own scheme is the cookie's (``SESSION_TRANSPORT=cookie`` or ``both``) or the token
    header's (``header``); any other, the header with ``both`` and the CSRF token's, is declared as a
    sub-dependency on the guard's signature, which is where FastAPI finds them.
    """

    __call__: Callable[..., Awaitable[ModelT]]  # each guard's own

    def __init__(self, core: SessionCore, description: str, *, csrf: bool = False) -> None:
        self.core = core
        self.description = description
        try:
            early = core.early_settings(build=False)  # settings given as a function are called at startup
        except SessionConfigError:  # reported when the app starts; the schema shows the defaults meanwhile
            early = None
        self.transport = early.transport if early is not None else "cookie"
        self._header_name = early.header_name if early is not None else "X-Auth-Token"
        schemes = [self._session_header()] if self.transport == "both" else []
        if csrf and self.transport != "header":  # header-transport requests need no CSRF token
            schemes.append(_CSRF_TOKEN)
        own = inspect.signature(self.__call__)
        connection = next(iter(own.parameters.values()))
        self.__signature__ = own.replace(
            parameters=[
                connection,
                *(
                    inspect.Parameter(f"_scheme_{index}", inspect.Parameter.KEYWORD_ONLY, default=Depends(scheme))
                    for index, scheme in enumerate(schemes)
                ),
            ]
        )

    def _session_header(self) -> "_HeaderScheme":
        header = self._header_name
        return _HeaderScheme(
            HEADER_SCHEME_NAME, header, f"Session token from the {header} header of the response that logged in"
        )

    # Properties where SecurityBase declares attributes: FastAPI only reads them, when it renders the
    # schema; the cookie name comes from the settings, which a manager reads when the app starts.
    @property
    def model(self) -> SecurityBaseModel:  # type: ignore[override]
        if self.transport == "header":
            return self._session_header().model
        return APIKey(**{"in": APIKeyIn.cookie}, name=self.core.cookie_name, description=self.description)

    @property
    def scheme_name(self) -> str:  # type: ignore[override]
        if self.transport == "header":
            return HEADER_SCHEME_NAME
        return self.core.scheme_name or _scheme_name_for(self.core.cookie_name)

    async def _load(self, connection: HTTPConnection) -> tuple[RequestSession, ModelT]:
        request_session = await RequestSession.of(connection, self.core)
        return request_session, request_session.model  # type: ignore[return-value]  # the core's model


class SessionGuard(_CookieScheme[ModelT]):
    """A dependency that lets a request through only if its session passes, and returns the session.

    Built by `SessionManager.require_auth`, `require_roles`, `require_any_role`,
    `require_recent_auth` and `require_partial_auth`. Use it on a route parameter, or in
    ``dependencies=[Depends(...)]`` of a route, an `APIRouter` or the app; routes marked
    `public` pass. Answers 401 without a logged-in user, 403 without the roles or a recent enough
    login, in FastAPI's JSON error shape (on a WebSocket, closes with 1008).
    """

    def __init__(
        self,
        core: SessionCore,
        *,
        roles: Collection[str] = (),
        any_role: bool = False,
        max_auth_age: float | None = None,
        allow_pending: bool = False,
    ) -> None:
        if not issubclass(core.model_cls, AuthSession):
            raise TypeError(
                f"session guards need a session model that subclasses AuthSession; {core.model_cls.__name__} does not"
            )
        super().__init__(core, "Session cookie set by logging in")
        self.roles = frozenset(roles)
        self.any_role = any_role
        self.max_auth_age = max_auth_age
        self.allow_pending = allow_pending

    async def __call__(self, request: HTTPConnection, **_schemes: None) -> ModelT:
        _, session = await self._load(request)
        if _exempt(request, self):
            return session
        auth = session
        assert isinstance(auth, AuthSession)
        if auth.user_id is None:
            raise _deny(request, HTTP_401_UNAUTHORIZED, "Not authenticated")
        if auth.pending_factors and not self.allow_pending:
            raise _deny(request, HTTP_401_UNAUTHORIZED, "Authentication incomplete")
        if self.roles:
            held = auth.roles
            allowed = not held.isdisjoint(self.roles) if self.any_role else self.roles <= held
            if not allowed:
                raise _deny(request, HTTP_403_FORBIDDEN, "Not enough privileges")
        if self.max_auth_age is not None:
            age = auth.auth_age(self.core.policy.now_datetime())
            if age is None or age > self.max_auth_age:
                raise _deny(request, HTTP_403_FORBIDDEN, "Recent authentication required")
        return session


class CsrfGuard(_CookieScheme[ModelT]):
    """Checks unsafe requests (POST, PUT, PATCH, DELETE) for a CSRF token and a same-origin Origin.

    The token is the session's `SessionModel.csrf_token`, sent in the ``X-CSRF-Token`` header or a
    ``csrf_token`` form field. The ``Origin`` header (or, lacking it, ``Referer``) must be the
    request's own origin or one of ``csrf_trusted_origins``. Safe methods pass. On a WebSocket, whose
    handshake can carry no token, the ``Origin`` check alone applies, which stops other sites from
    opening a socket with the user's cookie. A request whose session token came in the header of the
    header transport passes: no browser adds that header by itself, so no other site can forge it.
    Returns the session; answers 403 (or closes the WebSocket with 1008) otherwise.
    """

    header_name = "x-csrf-token"
    form_field = "csrf_token"

    def __init__(self, core: SessionCore) -> None:
        super().__init__(core, "Session cookie; unsafe requests also need the X-CSRF-Token header", csrf=True)

    @property
    def trusted_origins(self) -> frozenset[str]:
        """``csrf_trusted_origins`` without trailing slashes (read on use: the settings come at startup)."""
        return frozenset(origin.rstrip("/") for origin in self.core.settings.csrf_trusted_origins)

    async def __call__(self, connection: HTTPConnection, **_schemes: None) -> ModelT:
        request_session, session = await self._load(connection)
        if _exempt(connection, self) or request_session.token_via == "header":
            return session
        websocket = connection.scope["type"] == "websocket"
        if not websocket and connection.scope["method"] in _SAFE_METHODS:
            return session
        origin = connection.headers.get("origin")
        if origin is None and (referer := connection.headers.get("referer")):
            try:
                parts = urlsplit(referer)
            except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
                origin = "null"
            else:
                origin = f"{parts.scheme}://{parts.netloc}"
        if origin is not None and not self._trusted(connection, origin.rstrip("/")):
            own = _own_origin(connection)
            self._log(
                connection,
                "Origin %s is neither %s nor a trusted origin%s",
                printable(origin),
                printable(own),
                _proxy_hint(origin.rstrip("/"), own),
            )
            raise _deny(connection, HTTP_403_FORBIDDEN, "CSRF check failed: cross-origin request")
        if websocket:
            if origin is None:
                own = printable(_own_origin(connection))
                self._log(connection, "the WebSocket handshake has no Origin (expected %s)", own)
                raise _deny(connection, HTTP_403_FORBIDDEN, "CSRF check failed: no Origin on the WebSocket handshake")
            return session
        sent = connection.headers.get(self.header_name)
        if sent is None and isinstance(connection, Request):
            sent = await self._form_token(connection)
        expected = request_session.expected_csrf_token()
        # Compared as bytes: compare_digest raises TypeError on str with non-ASCII characters.
        if (
            not sent
            or expected is None
            or not secrets.compare_digest(sent.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
        ):
            if not sent:
                problem = "no token was sent"
            elif expected is None and not request_session.cookie_present:
                # A form from a session whose cookie the browser did not keep (a Secure cookie over http).
                problem = "the session has no token, and the request carried no session cookie"
            else:
                problem = "the session has no token" if expected is None else "wrong"
            self._log(connection, "%s (header %s or form field %s)", problem, self.header_name, self.form_field)
            raise _deny(connection, HTTP_403_FORBIDDEN, "CSRF check failed: missing or wrong token")
        return session

    async def _form_token(self, request: Request) -> str | None:
        """The ``csrf_token`` field of a form body; a plain HTML form is read without python-multipart."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in (_URLENCODED, _MULTIPART_FORM):
            return None
        try:
            body = await request.body()
        except RuntimeError:  # the route's own Form(...) parameters have read it as a form already
            return _text((await request.form()).get(self.form_field))
        if media_type == _URLENCODED:
            try:
                fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
            except ValueError:
                return None
            return next((value for name, value in fields if name == self.form_field), None)
        if not _MULTIPART:
            logger.warning(
                "CSRF check: a multipart/form-data body needs python-multipart to be read "
                "(pip install python-multipart), or send the token in the %s header",
                self.header_name,
            )
            return None
        return _text((await request.form()).get(self.form_field))

    @staticmethod
    def _log(connection: HTTPConnection, message: str, *args: object) -> None:
        method = connection.scope.get("method", "WEBSOCKET")
        logger.warning("CSRF check failed on %s %s: " + message, method, printable(connection.url.path), *args)

    def _trusted(self, connection: HTTPConnection, origin: str) -> bool:
        return origin == _own_origin(connection) or origin in self.trusted_origins


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _proxy_hint(origin: str, own: str) -> str:
    """What a proxy in front of the app got wrong, when the origins differ only as such a proxy makes them."""
    try:
        sent, served = urlsplit(origin), urlsplit(own)
        ports = sent.port, served.port
    except ValueError:
        return ""
    if sent.hostname is None or sent.hostname != served.hostname:
        return ""
    if (sent.scheme, served.scheme) == ("https", "http") and ports[0] == ports[1]:
        return (
            " (the request arrived as http: behind a TLS proxy, have it send X-Forwarded-Proto and run uvicorn"
            " with --proxy-headers --forwarded-allow-ips=<the proxy's address>)"
        )
    if sent.scheme == served.scheme and ports[0] is not None and ports[1] is None:
        return (
            " (the Host header lacks the port the browser used: have the proxy pass it on,"
            " with nginx proxy_set_header Host $http_host rather than $host)"
        )
    return ""


def _own_origin(connection: HTTPConnection) -> str:
    """The origin a same-origin request sends: its scheme (http for ws, https for wss) and its ``Host``."""
    scheme = {"ws": "http", "wss": "https"}.get(connection.url.scheme, connection.url.scheme)
    return f"{scheme}://{connection.headers.get('host', '')}"
