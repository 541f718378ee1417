"""arq workers, built the same way for `python -m services.<name>.worker` and for tests.

arq runs a job at least once: a job whose worker died runs again once its lease ends, and
only `Retry` retries an exception. Every job in ZAP is therefore idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvloop
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Worker

from zapcore.logging import configure_logging
from zapcore.metrics import serve_metrics

Hook = Callable[[dict[str, Any]], Awaitable[None]]


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
) -> Worker:
    return Worker(
        functions=list(functions),
        queue_name=queue,
        cron_jobs=list(cron_jobs),
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=on_startup,  # type: ignore[arg-type]  # arq's Protocol is structurally this
        on_shutdown=on_shutdown,  # type: ignore[arg-type]
        ctx=dict(ctx or {}),
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        job_timeout=job_timeout,
        poll_delay=poll_delay,
        # A job's result blocks re-enqueueing its id for as long as it is kept.
        keep_result=keep_result,
    )


def run_worker(name: str, log_level: str, metrics_port: int, build: Callable[[], Worker]) -> None:
    """Entry point of a worker process: logs, metrics, then run until SIGTERM/SIGINT."""
    configure_logging(name, log_level)
    serve_metrics(metrics_port)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    build().run()
