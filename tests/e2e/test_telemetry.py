"""Traces across the whole path: one request through the real gateway records the gateway's
span, the gRPC client and server spans and the spans of the jobs it queued, all in the
request's trace, each under the span that caused it."""

from __future__ import annotations

import httpx
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.factories import make_user
from tests.support.stack import Stack
from tests.support.waiting import eventually

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def _hex(span_id: int) -> str:
    return f"{span_id:016x}"


async def test_a_post_is_one_trace_from_the_gateway_to_its_jobs(
    stack: Stack, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    author = await make_user(client)
    answer = await client.post(
        "/api/v1/posts/",
        json={"content": "Hello, ZAP.", "media_urls": [], "hashtags": ["launch"]},
        headers={**author.headers, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
    )
    assert answer.status_code == 201, answer.text

    async def in_trace() -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.context is not None and f"{s.context.trace_id:032x}" == TRACE_ID
        ]

    def named(found: list[ReadableSpan], name: str, kind: otel.SpanKind) -> list[ReadableSpan]:
        return [s for s in found if s.name == name and s.kind is kind]

    consumer = otel.SpanKind.CONSUMER
    found = await eventually(
        in_trace,
        lambda found: bool(
            named(found, "job fanout_post", consumer)
            and named(found, "job score_content", consumer)
        ),
    )

    (request,) = named(found, "POST /api/v1/posts/", otel.SpanKind.SERVER)
    assert request.parent is not None
    assert _hex(request.parent.span_id) == CALLER_SPAN
    assert request.context is not None
    # The response names the gateway's span: its logs, its trace and the client agree.
    assert answer.headers["traceparent"] == f"00-{TRACE_ID}-{_hex(request.context.span_id)}-01"
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201

    create_post = "zap.feed.v1.FeedService/CreatePost"
    (called,) = named(found, create_post, otel.SpanKind.CLIENT)
    (served,) = named(found, create_post, otel.SpanKind.SERVER)
    assert called.parent is not None
    assert called.context is not None
    assert served.parent is not None
    assert served.context is not None
    assert called.parent.span_id == request.context.span_id
    assert served.parent.span_id == called.context.span_id

    (fanout,) = named(found, "job fanout_post", consumer)
    assert fanout.parent is not None
    assert fanout.parent.span_id == served.context.span_id
    # Scoring is queued by moderation's ScoreContent, which feed called while posting.
    (scoring,) = named(found, "job score_content", consumer)
    (score_call,) = named(
        found, "zap.moderation.v1.ModerationService/ScoreContent", otel.SpanKind.SERVER
    )
    assert scoring.parent is not None
    assert score_call.context is not None
    assert scoring.parent.span_id == score_call.context.span_id
