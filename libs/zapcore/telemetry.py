"""OpenTelemetry traces, recorded only when an exporter is configured.

ZAP's own trace context (`zapcore.tracing`) carries W3C ids through HTTP headers, gRPC
metadata, event envelopes and job arguments, and into every log line. With
`ZAP_OTEL_EXPORTER` set (`otlp` to `ZAP_OTEL_ENDPOINT` or the standard `OTEL_EXPORTER_OTLP_*`
variables, or `console`), each hop also records a span whose ids are that context's: the
span continues the caller's trace under the caller's span, and the context that logs and the
next hop see names the span itself, so a log line's `span_id` is a span in the trace.
Without an exporter nothing is set up: `start_span` only moves the context one hop along
(a new span id in the same trace), exactly as before tracing existed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace as otel
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from zapcore.settings import PlatformSettings
from zapcore.tracing import TraceContext, new_trace, set_current_trace

__all__ = [
    "Span",
    "SpanKind",
    "configure_telemetry",
    "enabled",
    "shutdown_telemetry",
    "span",
    "start_span",
]

Attributes = Mapping[str, str | bool | int | float]

EXPORTERS = ("", "otlp", "console")

_provider: TracerProvider | None = None
_tracer: otel.Tracer | None = None


def configure_telemetry(
    service: str,
    platform: PlatformSettings | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> bool:
    """Record spans in this process when an exporter is configured (or given); else no-op.

    Returns whether spans are recorded. A given exporter (tests) gets every span at once.
    """
    global _provider, _tracer
    settings = platform or PlatformSettings()
    kind = settings.otel_exporter.strip().lower()
    if kind not in EXPORTERS:
        raise ValueError(f"ZAP_OTEL_EXPORTER must be one of {EXPORTERS[1:]} or empty, not {kind!r}")
    if exporter is None and not kind:
        return False
    shutdown_telemetry()
    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "zap",
            "deployment.environment.name": str(settings.environment),
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp(settings.otel_endpoint)))
    # Deliberately not the global provider: it can be set once per process, and ZAP's spans
    # go through `start_span`, never through OpenTelemetry's own context.
    _provider, _tracer = provider, provider.get_tracer("zapcore")
    return True


def _otlp(endpoint: str) -> SpanExporter:
    # Imported here: the exporter pulls in its own gRPC channel machinery.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint or None)


def shutdown_telemetry() -> None:
    """Flush what is recorded and stop recording (spans become no-ops again)."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    """Whether spans are recorded in this process."""
    return _tracer is not None


class Span:
    """One hop's span: its trace context, and the recorded span when telemetry is on."""

    __slots__ = ("_span", "trace")

    def __init__(self, trace: TraceContext, recorded: otel.Span | None) -> None:
        self.trace = trace
        self._span = recorded

    @property
    def recording(self) -> bool:
        return self._span is not None

    def set_name(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)

    def set_attribute(self, key: str, value: str | bool | int | float) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str | None = None, error: BaseException | None = None) -> None:
        """Mark the span failed (with the exception, when there is one)."""
        if self._span is None:
            return
        if error is not None:
            self._span.record_exception(error)
        self._span.set_status(StatusCode.ERROR, description)

    def end(self) -> None:
        if self._span is not None:
            self._span.end()


def start_span(
    name: str,
    *,
    kind: SpanKind,
    parent: TraceContext | None,
    attributes: Attributes | None = None,
) -> Span:
    """A span under `parent` (a new trace without one); the caller ends it."""
    tracer = _tracer
    if tracer is None:
        return Span(parent.child() if parent is not None else new_trace(), None)
    context = _context_of(parent) if parent is not None else Context()
    recorded = tracer.start_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )
    ids = recorded.get_span_context()
    trace = TraceContext(f"{ids.trace_id:032x}", f"{ids.span_id:016x}", f"{ids.trace_flags:02x}")
    return Span(trace, recorded)


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind,
    parent: TraceContext | None,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """A span for the work of this task, which is the current trace while it runs."""
    current = start_span(name, kind=kind, parent=parent, attributes=attributes)
    set_current_trace(current.trace)
    try:
        yield current
    except Exception as error:
        current.fail(type(error).__name__, error)
        raise
    finally:
        current.end()


def _context_of(parent: TraceContext) -> Context:
    remote = otel.SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=otel.TraceFlags(int(parent.flags, 16)),
    )
    return otel.set_span_in_context(otel.NonRecordingSpan(remote), Context())
