"""arq workers from `build_worker` on a real Redis: every job is measured by outcome, runs in
the trace it was queued in, and the worker reports its queue's depth."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Retry, Worker
from opentelemetry import trace as otel
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.waiting import eventually
from zapcore.jobs import TRACEPARENT_KWARG, build_worker, enqueue
from zapcore.tracing import new_trace, set_current_trace

QUEUE = "zap:tests:jobs"


async def succeed(ctx: dict[str, Any], value: int) -> int:
    return value


async def retry_once(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.01)
    return "second time lucky"


async def fail(ctx: dict[str, Any]) -> None:
    raise RuntimeError("boom")


@pytest.fixture
async def pool(redis_db: tuple[str, Redis]) -> AsyncIterator[ArqRedis]:
    jobs = await create_pool(RedisSettings.from_dsn(redis_db[0]), default_queue_name=QUEUE)
    try:
        yield jobs
    finally:
        await jobs.aclose()


@contextlib.asynccontextmanager
async def running_worker(redis_url: str) -> AsyncIterator[Worker]:
    worker = build_worker(
        queue=QUEUE,
        redis_url=redis_url,
        functions=[succeed, retry_once, fail],
        handle_signals=False,
        poll_delay=0.01,
        queue_sample_seconds=0.05,
    )
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def runs(function: str, outcome: str) -> float:
    labels = {"queue": QUEUE, "function": function, "outcome": outcome}
    return REGISTRY.get_sample_value("zap_job_duration_seconds_count", labels) or 0.0


async def test_every_run_is_measured_by_outcome(
    redis_db: tuple[str, Redis], pool: ArqRedis
) -> None:
    before = {
        key: runs(*key)
        for key in [
            ("succeed", "success"),
            ("retry_once", "retry"),
            ("retry_once", "success"),
            ("fail", "error"),
        ]
    }
    async with running_worker(redis_db[0]):
        await enqueue(pool, "succeed", 7)
        await enqueue(pool, "retry_once")
        await enqueue(pool, "fail")

        async def measured() -> dict[tuple[str, str], float]:
            return {key: runs(*key) - count for key, count in before.items()}

        await eventually(measured, lambda seen: all(n == 1 for n in seen.values()))


async def test_a_job_runs_in_the_trace_it_was_queued_in(
    redis_db: tuple[str, Redis], pool: ArqRedis, spans: InMemorySpanExporter
) -> None:
    queued_in = new_trace()
    set_current_trace(queued_in)
    job = await enqueue(pool, "succeed", 3)
    assert job is not None
    # The trace travels as a keyword the function never sees.
    info = await job.info()
    assert info is not None
    assert info.kwargs == {TRACEPARENT_KWARG: queued_in.traceparent}
    async with running_worker(redis_db[0]):
        assert await job.result(timeout=10) == 3

    (recorded,) = [s for s in spans.get_finished_spans() if s.name == "job succeed"]
    assert recorded.kind is otel.SpanKind.CONSUMER
    assert recorded.context is not None
    assert recorded.parent is not None
    assert f"{recorded.context.trace_id:032x}" == queued_in.trace_id
    assert f"{recorded.parent.span_id:016x}" == queued_in.span_id
    assert recorded.attributes is not None
    assert recorded.attributes["zap.job.outcome"] == "success"
    assert recorded.attributes["messaging.destination.name"] == QUEUE


async def test_the_worker_reports_its_queue_depth(
    redis_db: tuple[str, Redis], pool: ArqRedis
) -> None:
    for n in range(3):  # due in an hour: they wait in the queue meanwhile
        await pool.enqueue_job("succeed", n, _defer_by=3600)

    async def depth() -> float | None:
        return REGISTRY.get_sample_value("zap_queue_depth", {"queue": QUEUE})

    async with running_worker(redis_db[0]):
        await eventually(depth, lambda value: value == 3)
        await pool.enqueue_job("succeed", 9, _defer_by=3600)
        await eventually(depth, lambda value: value == 4)
