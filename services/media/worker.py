"""media's worker: image processing jobs, the upload sweeper, and two event consumers: feed's
deleted posts (their media leave the store) and account deletions (all of the account's media
leave the store).

python -m services.media.worker
"""

from __future__ import annotations

import uuid
from typing import Any

from arq import cron, func
from arq.worker import Worker

from services.media.library.removal import PostMediaRemoval
from services.media.processing.pool import RenderPool
from services.media.processing.service import Processing
from services.media.processing.upkeep import forget_owner, requeue_stuck, sweep_uploads
from services.media.resources import JOB_QUEUE, MediaResources
from services.media.settings import MediaSettings
from zapcore.deletion import deletion_consumer
from zapcore.events import FEED, ConsumerConfig, ConsumerSet, EventConsumer
from zapcore.jobs import build_worker, run_worker
from zapcore.settings import PlatformSettings

CONSUMER_GROUP = "media"


def event_consumers(resources: MediaResources) -> ConsumerSet:
    """Feed's deleted posts and account deletions, on media's own consumer group."""
    return ConsumerSet(
        [
            EventConsumer(
                resources.redis,
                ConsumerConfig(group=CONSUMER_GROUP, topics=[FEED]),
                PostMediaRemoval(resources).handle,
            ),
            deletion_consumer(
                resources.redis, CONSUMER_GROUP, lambda user_id: forget_owner(resources, user_id)
            ),
        ]
    )


async def process_media(ctx: dict[str, Any], media_id: str) -> str:
    processing: Processing = ctx["processing"]
    return await processing.run(uuid.UUID(media_id), attempt=int(ctx.get("job_try", 1)))


async def sweep(ctx: dict[str, Any]) -> int:
    resources: MediaResources = ctx["resources"]
    await requeue_stuck(resources)
    return await sweep_uploads(resources)


async def startup(ctx: dict[str, Any]) -> None:
    resources = await MediaResources.open(ctx["platform"], ctx["settings"])
    ctx["resources"] = resources
    ctx["renderer"] = renderer = RenderPool(ctx["settings"])
    ctx["processing"] = Processing(resources, renderer)
    ctx["consumers"] = consumers = event_consumers(resources)
    consumers.start()


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["consumers"].stop()
    ctx["renderer"].close()
    await ctx["resources"].close()


def media_worker(
    platform: PlatformSettings, settings: MediaSettings, *, handle_signals: bool = True
) -> Worker:
    return build_worker(
        queue=JOB_QUEUE,
        redis_url=platform.redis_url,
        # sweep may also be queued on demand (operators, tests).
        # A processing job's result is not kept: a kept result would refuse the upkeep's
        # re-enqueue of a crashed job (same job id) for as long as it is kept.
        functions=[func(process_media, keep_result=0), sweep],
        cron_jobs=[cron(sweep, second={15}, unique=True, run_at_startup=False)],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
        max_jobs=settings.worker_max_jobs,
        job_timeout=300,
    )


def main() -> None:
    platform, settings = PlatformSettings(), MediaSettings()
    if platform.is_production:
        settings.check_production(platform)
    run_worker(
        "media-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: media_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
