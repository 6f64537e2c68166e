"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporters.

The providers are passed to each manager, never set globally, so no test sees another's telemetry.
"""

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import Depends
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from fastapi_sessions import AuthSession, MemoryStore, SessionManager, StoredSession, StoreUnavailableError
from fastapi_sessions._telemetry import Telemetry
from tests.support import Backend, CountingStore, client, login_app, settings


@dataclass
class Readers:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def span_names(self) -> list[str]:
        names = [span.name for span in self.finished()]
        self.spans.clear()
        return names

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def points(self) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
        """Each metric point by name and attributes: a counter's sum, a histogram's count."""
        data = self.metrics.get_metrics_data()
        found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attributes = tuple(sorted((point.attributes or {}).items()))
                        value: Any = getattr(point, "value", None) or getattr(point, "count", 0)
                        found[metric.name, attributes] = float(value)
        return found


@pytest.fixture
def readers() -> Iterator[Readers]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])
    yield Readers(spans, metrics, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


class OutageStore(CountingStore):
    """A store that can go down on demand."""

    down = False

    async def load(self, key: str) -> StoredSession | None:
        if self.down:
            raise StoreUnavailableError("OutageStore: load at test:// failed: connection refused")
        return await super().load(key)


def manager(store: Any, readers: Readers) -> SessionManager[AuthSession]:
    return SessionManager(
        AuthSession,
        settings=settings(),
        store=store,
        tracer_provider=readers.tracer_provider,
        meter_provider=readers.meter_provider,
    )


def op(name: str, store: str, **more: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    attributes = {"fastapi_sessions.operation": name, "fastapi_sessions.store": store, **more}
    return "fastapi_sessions.store.duration", tuple(sorted(attributes.items()))


def count(name: str, **attributes: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return f"fastapi_sessions.{name}", tuple(sorted(attributes.items()))


def test_login_read_logout_rejection_and_outage(backend: Backend, readers: Readers) -> None:
    store = OutageStore(backend.make_store())
    inner = type(store).__name__
    sessions = manager(store, readers)
    with client(login_app(sessions)) as browser:
        assert browser.post("/login/alice").status_code == 200
        assert readers.span_names() == ["fastapi_sessions.store.create", "fastapi_sessions.commit"]
        assert browser.get("/me").status_code == 200
        assert readers.span_names() == ["fastapi_sessions.store.load", "fastapi_sessions.commit"]

        # The store operations of a commit are its children.
        cookie = browser.cookies.get(sessions.cookie_name)
        browser.cookies.clear()
        browser.post("/login/bob", headers={"cookie": f"{sessions.cookie_name}={cookie}"})
        load, replace, commit = readers.finished()
        readers.spans.clear()
        assert (load.name, replace.name, commit.name) == (
            "fastapi_sessions.store.load",
            "fastapi_sessions.store.replace",
            "fastapi_sessions.commit",
        )
        assert replace.parent is not None and commit.context is not None
        assert replace.parent.span_id == commit.context.span_id and load.parent is None
        assert dict(replace.attributes or {}) == {
            "fastapi_sessions.operation": "replace",
            "fastapi_sessions.store": inner,
        }

        browser.cookies.clear()
        assert browser.get("/me", headers={"cookie": f"{sessions.cookie_name}=forged"}).status_code == 401
        assert browser.get("/me", headers={"cookie": f"{sessions.cookie_name}={cookie}"}).status_code == 401

        store.down = True
        response = browser.get("/me", headers={"cookie": f"{sessions.cookie_name}={cookie}"})
        assert response.status_code == 503
        failed = readers.finished()[-1]
        assert failed.name == "fastapi_sessions.store.load" and failed.status.status_code is StatusCode.ERROR
        assert any(event.name == "exception" for event in failed.events)
        store.down = False

    points = readers.points()
    assert points[count("sessions.created", **{"fastapi_sessions.reason": "login"})] == 1
    assert points[count("sessions.regenerated", **{"fastapi_sessions.reason": "login"})] == 1
    assert points[count("sessions.loaded")] == 2
    assert points[count("sessions.rejected", **{"fastapi_sessions.reason": "bad_signature"})] == 1
    assert points[count("sessions.rejected", **{"fastapi_sessions.reason": "unknown_id"})] == 1
    assert points[count("commits", **{"fastapi_sessions.outcome": "written"})] == 2
    # The read and the two refused cookies; the outage answered 503 before any commit.
    assert points[count("commits", **{"fastapi_sessions.outcome": "unchanged"})] == 3
    errors = count(
        "store.errors",
        **{"fastapi_sessions.operation": "load", "fastapi_sessions.store": inner},
        **{"error.type": "StoreUnavailableError"},
    )
    assert points[errors] == 1
    assert points[op("load", inner)] == 4  # the failed one too
    assert points[op("create", inner)] == 1


def test_a_commit_whose_session_was_revoked_meanwhile_is_dropped(readers: Readers) -> None:
    sessions = manager(MemoryStore(), readers)
    app = login_app(sessions)

    @app.post("/promote")
    async def promote(session: Annotated[AuthSession, Depends(sessions.require_auth)]) -> dict[str, bool]:
        assert session.user_id is not None
        await sessions.revoke_all_sessions(session.user_id)  # as another device would, meanwhile
        session.roles = {"admin"}
        return {"ok": True}

    with client(app) as browser:
        browser.post("/login/alice")
        assert browser.post("/promote").status_code == 200
    points = readers.points()
    assert points[count("commits", **{"fastapi_sessions.outcome": "dropped"})] == 1
    assert points[count("sessions.revoked", **{"fastapi_sessions.reason": "revoke_all_sessions"})] == 1


def test_destroy_counts(readers: Readers) -> None:
    from tests.support import UserSession, build_app

    sessions = SessionManager(
        UserSession,
        settings=settings(),
        store=MemoryStore(),
        tracer_provider=readers.tracer_provider,
        meter_provider=readers.meter_provider,
    )
    with client(build_app(sessions)) as browser:
        browser.post("/login", params={"uid": "alice"})
        browser.post("/logout")
    points = readers.points()
    assert points[count("sessions.destroyed", **{"fastapi_sessions.reason": "logout"})] == 1
    assert "fastapi_sessions.store.delete" in readers.span_names()


def test_without_an_sdk_nothing_is_recorded_and_nothing_breaks() -> None:
    telemetry = Telemetry()
    telemetry.resolve()  # the global providers: the API's proxies, as no test sets an SDK globally
    assert (telemetry.active, telemetry.tracer, telemetry.metering) == (False, None, False)
    sessions = SessionManager(AuthSession, settings=settings(), store=MemoryStore())
    with client(login_app(sessions)) as browser:
        assert browser.post("/login/alice").status_code == 200
        assert browser.get("/me").json() == {"user": "alice"}
    assert sessions._core.telemetry.active is False


def test_without_the_api_installed_the_library_works(monkeypatch: pytest.MonkeyPatch, readers: Readers) -> None:
    blocked: Mapping[str, None] = {name: None for name in list(sys.modules) if name.split(".")[0] == "opentelemetry"}
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    sessions = manager(MemoryStore(), readers)  # providers given, but no API to use them through
    with client(login_app(sessions)) as browser:
        assert browser.post("/login/alice").status_code == 200
        assert browser.get("/me").json() == {"user": "alice"}
    assert sessions._core.telemetry.active is False


def test_metrics_without_traces(readers: Readers) -> None:
    sessions = SessionManager(
        AuthSession, settings=settings(), store=MemoryStore(), meter_provider=readers.meter_provider
    )
    with client(login_app(sessions)) as browser:
        assert browser.post("/login/alice").status_code == 200
    assert sessions._core.telemetry.tracer is None  # the global provider: the API's proxy, no SDK
    assert readers.points()[count("commits", **{"fastapi_sessions.outcome": "written"})] == 1
    assert readers.span_names() == []
