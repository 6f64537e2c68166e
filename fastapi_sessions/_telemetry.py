"""`Telemetry`: OpenTelemetry spans and metrics of the sessions, through the OpenTelemetry API only.

Without an SDK (the API's own no-op or proxy providers), or without the API installed at all, every
method returns at once: no span, no attribute dictionary, no clock read. The providers are looked
up when the store opens (at app startup), so an SDK configured before the app starts is used.
"""

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi_sessions.__version__ import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

__all__ = ["Telemetry"]

_SCOPE = "fastapi_sessions"
SESSION_COUNTERS = ("loaded", "created", "regenerated", "destroyed", "expired", "revoked", "rejected")
"""One counter per lifecycle step, ``fastapi_sessions.sessions.<step>``, with the event's reason as an attribute."""


def _is_real(provider: object) -> bool:
    """A provider of an SDK; the API's own (no-op, or the proxy standing in until one is set) record nothing."""
    return not type(provider).__module__.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


class Telemetry:
    """Spans for each store operation and each commit, and the session metrics.

    Args:
        tracer_provider: Where spans go; the global one (``opentelemetry.trace``) when ``None``.
        meter_provider: Where metrics go; the global one (``opentelemetry.metrics``) when ``None``.
    """

    __slots__ = (
        "_commits",
        "_meter_provider",
        "_sessions",
        "_store_duration",
        "_store_errors",
        "_tracer_provider",
        "active",
        "metering",
        "tracer",
    )

    def __init__(self, tracer_provider: "TracerProvider | None" = None, meter_provider: "MeterProvider | None" = None):
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.tracer: Tracer | None = None
        self.metering = False
        self.active = False
        """Spans or metrics are recorded: callers skip `store_operation` and `commit_span` when not."""
        self._sessions: dict[str, Counter] = {}
        self._commits: Counter | None = None
        self._store_errors: Counter | None = None
        self._store_duration: Histogram | None = None

    def resolve(self) -> None:
        """Find the providers: those given, else the global ones if an SDK has set them."""
        try:
            from opentelemetry import metrics, trace
        except ImportError:  # the [otel] extra is not installed: nothing to report to
            return
        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        self.tracer = tracer_provider.get_tracer(_SCOPE, __version__) if _is_real(tracer_provider) else None
        meter_provider = self._meter_provider or metrics.get_meter_provider()
        self.metering = _is_real(meter_provider)
        self.active = self.metering or self.tracer is not None
        if not self.metering:
            return
        meter = meter_provider.get_meter(_SCOPE, __version__)
        self._sessions = {
            step: meter.create_counter(f"fastapi_sessions.sessions.{step}", unit="{session}")
            for step in SESSION_COUNTERS
        }
        self._commits = meter.create_counter(
            "fastapi_sessions.commits", unit="{commit}", description="Session commits, by outcome"
        )
        self._store_errors = meter.create_counter(
            "fastapi_sessions.store.errors", unit="{error}", description="Store operations that failed or timed out"
        )
        self._store_duration = meter.create_histogram(
            "fastapi_sessions.store.duration", unit="s", description="Time each store operation took"
        )

    def session(self, step: str, reason: str | None = None) -> None:
        """Count one lifecycle step (a load, a creation, a rejection...)."""
        if self.metering:
            self._sessions[step].add(1, {"fastapi_sessions.reason": reason} if reason else None)

    def commit(self, outcome: str) -> None:
        """Count one commit: ``written``, ``unchanged``, ``dropped``, ``conflict`` or ``failed``."""
        if self.metering:
            assert self._commits is not None
            self._commits.add(1, {"fastapi_sessions.outcome": outcome})

    @contextlib.contextmanager
    def commit_span(self) -> Iterator[None]:
        """The span of one request's commit; the store operations it makes are its children."""
        if self.tracer is None:
            yield
            return
        with self.tracer.start_as_current_span("fastapi_sessions.commit"):
            yield

    @contextlib.contextmanager
    def store_operation(self, operation: str, store: str) -> Iterator[None]:
        """Span, time and count the errors of one store operation (the gateway enters it only when `active`)."""
        tracer = self.tracer
        attributes: dict[str, Any] = {"fastapi_sessions.operation": operation, "fastapi_sessions.store": store}
        with (
            tracer.start_as_current_span(f"fastapi_sessions.store.{operation}", attributes=attributes)
            if tracer is not None
            else contextlib.nullcontext()
        ):
            start = time.perf_counter()
            try:
                yield
            except Exception as exc:
                if self.metering:
                    assert self._store_errors is not None
                    self._store_errors.add(1, {**attributes, "error.type": type(exc).__name__})
                raise
            finally:
                if self.metering:
                    assert self._store_duration is not None
                    self._store_duration.record(time.perf_counter() - start, attributes)
