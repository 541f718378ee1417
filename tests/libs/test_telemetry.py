"""OpenTelemetry spans: off without an exporter; with one, every hop records a span whose ids
are the W3C trace context that travels (and that logs carry); gRPC client and server spans
over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.waiting import eventually
from zapcore import telemetry
from zapcore.grpc_client import open_channel
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings
from zapcore.telemetry import SpanKind, configure_telemetry, shutdown_telemetry, start_span
from zapcore.tracing import current_trace, parse_traceparent, set_current_trace

SECRET = "t" * 64
PARENT = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert configure_telemetry("tests", PlatformSettings(), exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_telemetry()


def test_without_an_exporter_nothing_is_set_up() -> None:
    assert configure_telemetry("tests", PlatformSettings(otel_exporter="")) is False
    assert not telemetry.enabled()
    # Not even OpenTelemetry's global provider: it stays the default proxy.
    assert isinstance(otel.get_tracer_provider(), otel.ProxyTracerProvider)
    assert PARENT is not None
    hop = start_span("anything", kind=SpanKind.SERVER, parent=PARENT)
    assert not hop.recording
    assert hop.trace.trace_id == PARENT.trace_id
    assert hop.trace.span_id != PARENT.span_id


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="ZAP_OTEL_EXPORTER"):
        configure_telemetry("tests", PlatformSettings(otel_exporter="jaeger"))
    assert not telemetry.enabled()


def test_a_span_takes_the_travelling_ids(spans: InMemorySpanExporter) -> None:
    assert PARENT is not None
    with telemetry.span("work", kind=SpanKind.CONSUMER, parent=PARENT) as hop:
        assert current_trace() == hop.trace
    (recorded,) = spans.get_finished_spans()
    assert recorded.context is not None
    assert recorded.parent is not None
    assert f"{recorded.context.trace_id:032x}" == PARENT.trace_id == hop.trace.trace_id
    assert f"{recorded.context.span_id:016x}" == hop.trace.span_id
    assert f"{recorded.parent.span_id:016x}" == PARENT.span_id
    assert recorded.kind is otel.SpanKind.CONSUMER


def test_a_failure_marks_the_span(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), telemetry.span("work", kind=SpanKind.INTERNAL, parent=None):
        raise RuntimeError("boom")
    (recorded,) = spans.get_finished_spans()
    assert recorded.status.status_code is otel.StatusCode.ERROR
    assert recorded.parent is None  # no parent: the first span of a new trace


async def test_grpc_calls_record_a_client_and_a_server_span(
    spans: InMemorySpanExporter,
) -> None:
    server = GrpcServer(
        service_names=["test.Probe"], signer=IdentitySigner(SECRET), host="127.0.0.1", port=0
    )
    seen_on_server: list[str | None] = []

    async def probe(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        trace = current_trace()
        seen_on_server.append(trace.traceparent if trace else None)
        return b"ok"

    async def count(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        for n in range(3):
            yield str(n).encode()

    server.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Probe",
                {
                    "Probe": grpc.unary_unary_rpc_method_handler(probe),
                    "Count": grpc.unary_stream_rpc_method_handler(count),
                },
            ),
        )
    )
    await server.start()
    channel = open_channel(
        f"127.0.0.1:{server.port}",
        health_pb2.DESCRIPTOR.services_by_name["Health"],
        signer=IdentitySigner(SECRET),
        caller="tests",
    )
    try:
        set_current_trace(PARENT)
        assert await channel.unary_unary("/test.Probe/Probe")(b"", timeout=5) == b"ok"
        stream = channel.unary_stream("/test.Probe/Count")(b"", timeout=5)
        assert [item async for item in stream] == [b"0", b"1", b"2"]
        # A stream's client span ends with the stream (from the call's done callback).
        streamed = await eventually(
            lambda: _finished(spans, "test.Probe/Count"), lambda found: len(found) == 2
        )
    finally:
        await channel.close()
        await server.stop()
    assert PARENT is not None
    assert {s.kind for s in streamed} == {otel.SpanKind.CLIENT, otel.SpanKind.SERVER}
    probed = [s for s in spans.get_finished_spans() if s.name == "test.Probe/Probe"]
    by_kind = {s.kind: s for s in probed}
    client, served = by_kind[otel.SpanKind.CLIENT], by_kind[otel.SpanKind.SERVER]
    assert client.name == served.name == "test.Probe/Probe"
    assert client.context is not None
    assert served.context is not None
    assert client.parent is not None
    assert served.parent is not None
    assert {client.context.trace_id, served.context.trace_id} == {int(PARENT.trace_id, 16)}
    assert client.parent.span_id == int(PARENT.span_id, 16)
    assert served.parent.span_id == client.context.span_id
    # What the handler (and its log lines) saw is the server span itself.
    server_span = f"{served.context.span_id:016x}"
    assert seen_on_server == [f"00-{PARENT.trace_id}-{server_span}-01"]
    assert served.attributes is not None
    assert served.attributes["rpc.grpc.status_code"] == 0


async def _finished(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]
