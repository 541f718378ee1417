"""feed's worker: fanout jobs, the 15-minute rescoring, the outbox sweeper, asking again
for ML scores of unscored content, and the consumer of graph events (follow backfill,
unfollow and block removal).

python -m services.feed.worker
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from arq import cron
from arq.worker import Worker

from services.feed.forget import forget_user
from services.feed.posts.scoring import request_missing_scores
from services.feed.resources import JOB_QUEUE, FeedResources
from services.feed.settings import FeedSettings
from services.feed.timeline.fanout import Fanout
from services.feed.timeline.upkeep import GraphEffects, rescore, sweep_fanouts
from zapcore.deletion import deletion_consumer
from zapcore.events import GRAPH, ConsumerConfig, EventConsumer
from zapcore.jobs import build_worker, run_worker
from zapcore.settings import PlatformSettings


async def fanout_post(ctx: dict[str, Any], post_id: str) -> int:
    return await Fanout(ctx["resources"]).run(uuid.UUID(post_id))


async def rescore_feeds(ctx: dict[str, Any]) -> int:
    return await rescore(ctx["resources"])


async def sweep_lost_fanouts(ctx: dict[str, Any]) -> int:
    return await sweep_fanouts(ctx["resources"])


async def request_scores(ctx: dict[str, Any]) -> int:
    return await request_missing_scores(ctx["resources"])


async def relay_events(ctx: dict[str, Any]) -> int:
    resources: FeedResources = ctx["resources"]
    return await resources.outbox.relay_stale(
        older_than_seconds=resources.settings.event_relay_after_seconds
    )


async def startup(ctx: dict[str, Any]) -> None:
    resources = FeedResources.open(ctx["platform"], ctx["settings"])
    ctx["resources"] = resources
    consumer = EventConsumer(
        resources.redis,
        ConsumerConfig(group="feed", topics=[GRAPH]),
        GraphEffects(resources).handle,
    )
    deletions = deletion_consumer(
        resources.redis, "feed", lambda user_id: forget_user(resources, user_id)
    )
    ctx["stop"] = stop = asyncio.Event()
    ctx["consumers"] = [
        asyncio.create_task(consumer.run(stop)),
        asyncio.create_task(deletions.run(stop)),
    ]


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["stop"].set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.gather(*ctx["consumers"]), timeout=5)
    await ctx["resources"].close()


def feed_worker(
    platform: PlatformSettings, settings: FeedSettings, *, handle_signals: bool = True
) -> Worker:
    return build_worker(
        queue=JOB_QUEUE,
        redis_url=platform.redis_url,
        # rescore_feeds may also be queued on demand (operators, tests).
        functions=[fanout_post, rescore_feeds],
        cron_jobs=[
            cron(rescore_feeds, minute={0, 15, 30, 45}, unique=True, run_at_startup=False),
            cron(
                sweep_lost_fanouts,
                second=set(range(0, 60, settings.sweep_every_seconds)),
                unique=True,
                run_at_startup=False,
            ),
            cron(request_scores, second={45}, unique=True, run_at_startup=False),
            cron(relay_events, second=set(range(0, 60, 5)), unique=True, run_at_startup=True),
        ],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
    )


def main() -> None:
    platform, settings = PlatformSettings(), FeedSettings()
    if platform.is_production:
        settings.check_production(platform)
    run_worker(
        "feed-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: feed_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
