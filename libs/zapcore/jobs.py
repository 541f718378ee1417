"""arq workers, built the same way for `python -m services.<name>.worker` and for tests.

arq runs a job at least once: a job whose worker died runs again once its lease ends, and
only `Retry` retries an exception. Every job in ZAP is therefore idempotent.

Every job is measured (`zap_job_duration_seconds` by queue, function and outcome) and runs
in a span that continues the trace of whatever queued it: `enqueue` adds the current
traceparent to the job as its `_traceparent` keyword, which the worker takes off again
before calling the function. Each worker also samples its queue's length
(`zap_queue_depth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import uvloop
from arq.connections import ArqRedis
from arq.cron import CronJob
from arq.jobs import Job
from arq.typing import WorkerCoroutine
from arq.worker import Function, Retry, Worker, func
from redis.exceptions import RedisError

from zapcore.logging import configure_logging, get_logger
from zapcore.metrics import JOB_DURATION, QUEUE_DEPTH, serve_metrics
from zapcore.redis import worker_redis_settings
from zapcore.telemetry import SpanKind, configure_telemetry, span
from zapcore.tracing import current_trace, parse_traceparent

log = get_logger(__name__)

Hook = Callable[[dict[str, Any]], Awaitable[None]]
Registered = TypeVar("Registered", Function, CronJob)

# The keyword a job carries its trace in; taken off before the function is called.
TRACEPARENT_KWARG = "_traceparent"
_SAMPLER = "zap_queue_depth_sampler"


async def enqueue(jobs: ArqRedis, function: str, *args: Any, **kwargs: Any) -> Job | None:
    """`jobs.enqueue_job(function, ...)`, carrying the current trace into the job."""
    trace = current_trace()
    if trace is not None:
        kwargs[TRACEPARENT_KWARG] = trace.traceparent
    return await jobs.enqueue_job(function, *args, **kwargs)


def build_worker(
    *,
    queue: str,
    redis_url: str,
    functions: Sequence[Any],
    cron_jobs: Sequence[CronJob] = (),
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    ctx: dict[str, Any] | None = None,
    handle_signals: bool = True,
    max_jobs: int = 10,
    job_timeout: int = 3600,
    poll_delay: float = 0.05,
    keep_result: int = 3600,
    queue_sample_seconds: float = 15.0,
) -> Worker:
    """A worker for `queue` whose jobs (and cron jobs) are measured and traced."""

    def instrumented(registered: Registered) -> Registered:
        timeout = registered.timeout_s or job_timeout
        wrapped = _instrument(queue, registered.name, registered.coroutine, timeout)
        return dataclasses.replace(registered, coroutine=wrapped)

    async def startup(worker_ctx: dict[str, Any]) -> None:
        if on_startup is not None:
            await on_startup(worker_ctx)
        worker_ctx[_SAMPLER] = asyncio.create_task(
            _sample_queue_depth(worker_ctx["redis"], queue, queue_sample_seconds)
        )

    async def shutdown(worker_ctx: dict[str, Any]) -> None:
        sampler: asyncio.Task[None] | None = worker_ctx.pop(_SAMPLER, None)
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if on_shutdown is not None:
            await on_shutdown(worker_ctx)

    return Worker(
        functions=[instrumented(func(function)) for function in functions],
        queue_name=queue,
        cron_jobs=[instrumented(cron_job) for cron_job in cron_jobs],
        redis_settings=worker_redis_settings(redis_url),
        on_startup=startup,  # type: ignore[arg-type]  # arq's Protocol is structurally this
        on_shutdown=shutdown,  # type: ignore[arg-type]
        ctx=dict(ctx or {}),
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        job_timeout=job_timeout,
        poll_delay=poll_delay,
        # A job's result blocks re-enqueueing its id for as long as it is kept.
        keep_result=keep_result,
    )


def _instrument(
    queue: str, name: str, coroutine: WorkerCoroutine, timeout: float
) -> WorkerCoroutine:
    """`coroutine`, measured, in a span continuing the trace the job was queued in."""

    async def job(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        parent = parse_traceparent(kwargs.pop(TRACEPARENT_KWARG, None))
        started = time.perf_counter()
        outcome = "error"
        attributes: dict[str, str | int] = {
            "messaging.system": "arq",
            "messaging.destination.name": queue,
            "messaging.message.id": str(ctx.get("job_id", "")),
            "zap.job.try": int(ctx.get("job_try", 1)),
        }
        with span(
            f"job {name}", kind=SpanKind.CONSUMER, parent=parent, attributes=attributes
        ) as job_span:
            try:
                result = await coroutine(ctx, *args, **kwargs)
                outcome = "success"
                return result
            except Retry:
                outcome = "retry"
                raise
            except asyncio.CancelledError:
                # Cancelled by a stopping worker, the job runs again; at its timeout, it failed.
                outcome = "error" if time.perf_counter() - started >= timeout else "retry"
                raise
            finally:
                JOB_DURATION.labels(queue, name, outcome).observe(time.perf_counter() - started)
                job_span.set_attribute("zap.job.outcome", outcome)

    job.__qualname__ = job.__name__ = name
    return job


async def _sample_queue_depth(redis: ArqRedis, queue: str, every_seconds: float) -> None:
    """Keep `zap_queue_depth` current: arq's queue is a sorted set of job ids."""
    while True:
        try:
            QUEUE_DEPTH.labels(queue).set(await redis.zcard(queue))
        except (RedisError, OSError) as error:
            log.warning("jobs.queue_depth_unavailable", queue=queue, error=str(error))
        await asyncio.sleep(every_seconds)


def run_worker(name: str, log_level: str, metrics_port: int, build: Callable[[], Worker]) -> None:
    """Entry point of a worker process: logs, metrics, traces, then run until SIGTERM/SIGINT."""
    configure_logging(name, log_level)
    serve_metrics(metrics_port)
    configure_telemetry(name)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # arq's worker stops for good when Redis goes away (a restart, a failover): start a new
    # one, as often as it takes, rather than leave the queue unserved until someone notices.
    # A SIGTERM during the pause reaches the next worker, which then stops at once.
    while True:
        worker = build()
        try:
            worker.run()
            return
        except (RedisError, OSError) as error:
            log.warning("worker.redis_lost", error=str(error), restart_in_seconds=1)
        # arq skips on_shutdown when Redis is gone; run it, so resources are not left open.
        if worker.on_shutdown is not None:
            with contextlib.suppress(Exception):
                loop.run_until_complete(worker.on_shutdown(worker.ctx))
        time.sleep(1)
