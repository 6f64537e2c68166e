"""Talking to an app as a browser would: an https client, per-browser cookies, parsed ``Set-Cookie`` headers."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

BASE_URL = "https://testserver"


@contextmanager
def client(app: FastAPI, **kwargs: Any) -> Iterator[TestClient]:
    """A browser-like client: https, a cookie jar, the app's startup and shutdown run."""
    with TestClient(app, base_url=BASE_URL, **kwargs) as test_client:
        yield test_client


def set_cookies(response: Any) -> list[str]:
    return [value for name, value in response.headers.multi_items() if name.lower() == "set-cookie"]


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header: attribute names lowercased, flags mapped to ``""``."""

    name: str
    value: str
    attributes: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> "SetCookie":
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes = {}
        for part in rest:
            key, _, attribute = part.strip().partition("=")
            attributes[key.lower()] = attribute
        return cls(name, value, attributes)

    @property
    def max_age(self) -> int | None:
        value = self.attributes.get("max-age")
        return int(value) if value is not None else None

    @property
    def scope(self) -> tuple[str, str | None, str | None]:
        """What a browser matches to replace or expire a cookie: name, path and domain."""
        return self.name, self.attributes.get("path"), self.attributes.get("domain")


def parsed_cookies(response: Response) -> list[SetCookie]:
    return [SetCookie.parse(header) for header in set_cookies(response)]


def assert_no_new_cookie(response: Response) -> None:
    """A request whose cookie named no live session gets no cookie back, at most the old one expired."""
    assert all(cookie.max_age == 0 and cookie.value == "" for cookie in parsed_cookies(response)), response.headers


class Browser:
    """One browser: its own session cookie and User-Agent, over a shared `TestClient`.

    Several browsers share one client (so one event loop, which network stores need), each
    sending only its own cookie. A ``Max-Age=0`` answer expires the cookie, as a browser would.
    """

    def __init__(self, test_client: TestClient, cookie_name: str, user_agent: str = "test-browser/1.0") -> None:
        self.client = test_client
        self.cookie_name = cookie_name
        self.user_agent = user_agent
        self.cookie: str | None = None

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str | bytes] | None = None, **kwargs: Any
    ) -> Response:
        sent = {b"user-agent": self.user_agent.encode()}
        if self.cookie is not None:
            sent[b"cookie"] = f"{self.cookie_name}={self.cookie}".encode()
        for name, value in (headers or {}).items():
            sent[name.lower().encode()] = value if isinstance(value, bytes) else value.encode()
        self.client.cookies.clear()
        response = self.client.request(method, url, headers=sent, **kwargs)
        self.client.cookies.clear()
        for cookie in parsed_cookies(response):
            if cookie.name == self.cookie_name:
                self.cookie = None if cookie.max_age == 0 else cookie.value
        return response

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def replay(self, method: str, url: str, cookie: str, **kwargs: Any) -> Response:
        """Send a request with ``cookie`` (e.g. a stolen or stale one) without changing this browser's own."""
        kept = self.cookie
        self.cookie = cookie
        try:
            return self.request(method, url, **kwargs)
        finally:
            self.cookie = kept
