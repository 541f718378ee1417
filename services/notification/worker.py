"""notification's worker: the deliver consumers (feed, graph and moderation events become
notifications, published live), the account-deletion cascade and the retention cron.

python -m services.notification.worker
"""

from __future__ import annotations

import os
import socket
from typing import Any

from arq import cron
from arq.worker import Worker

from services.notification.delivery.service import Delivery
from services.notification.delivery.upkeep import prune
from services.notification.forget import forget_user
from services.notification.resources import JOB_QUEUE, NotificationResources
from services.notification.settings import NotificationSettings
from zapcore.deletion import deletion_consumer
from zapcore.events import FEED, GRAPH, MODERATION, ConsumerConfig, ConsumerSet, EventConsumer
from zapcore.ids import new_id
from zapcore.jobs import build_worker, run_worker
from zapcore.settings import PlatformSettings

CONSUMER_GROUP = "notification"
TOPICS = (FEED, GRAPH, MODERATION)


def deliver_consumers(resources: NotificationResources) -> ConsumerSet:
    """The deliver readers (one consumer group, several side by side, each delivering what
    one read brings as a batch) and the account-deletion cascade of one worker process."""
    settings = resources.settings
    delivery = Delivery(resources)
    # Unique per start: a restarted process takes over its predecessor's unacknowledged
    # entries through XAUTOCLAIM once they have been idle long enough.
    prefix = f"{socket.gethostname()}-{os.getpid()}-{new_id().hex[-6:]}"
    readers = [
        EventConsumer(
            resources.redis,
            ConsumerConfig(
                group=CONSUMER_GROUP,
                topics=TOPICS,
                consumer=f"{prefix}-{index}",
                claim_idle_ms=settings.deliver_claim_idle_ms,
            ),
            delivery.handle,
            # What one read brings is delivered in one transaction and one publish.
            batch_handler=delivery.handle_batch,
        )
        for index in range(settings.deliver_consumers)
    ]
    cascade = deletion_consumer(
        resources.redis, "notification", lambda user_id: forget_user(resources, user_id)
    )
    return ConsumerSet([*readers, cascade], grace_seconds=10.0)


async def prune_notifications(ctx: dict[str, Any]) -> int:
    return await prune(ctx["resources"])


async def startup(ctx: dict[str, Any]) -> None:
    resources = NotificationResources.open(ctx["platform"], ctx["settings"])
    ctx["resources"] = resources
    ctx["deliver"] = deliver = deliver_consumers(resources)
    deliver.start()


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["deliver"].stop()
    await ctx["resources"].close()


def notification_worker(
    platform: PlatformSettings, settings: NotificationSettings, *, handle_signals: bool = True
) -> Worker:
    return build_worker(
        queue=JOB_QUEUE,
        redis_url=platform.redis_url,
        # prune_notifications may also be queued on demand (operators, tests).
        functions=[prune_notifications],
        cron_jobs=[cron(prune_notifications, minute={23}, unique=True, run_at_startup=False)],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
        job_timeout=900,
    )


def main() -> None:
    platform, settings = PlatformSettings(), NotificationSettings()
    if platform.is_production:
        settings.check_production(platform)
    run_worker(
        "notification-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: notification_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
