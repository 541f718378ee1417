"""moderation's worker: tier-2 ML scoring jobs.

python -m services.moderation.worker
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from arq import Retry
from arq.worker import Worker

from services.moderation.resources import JOB_QUEUE, ModerationResources
from services.moderation.settings import ModerationSettings
from services.moderation.tier2.classifiers import Classifier, ModelUnavailable, load_classifier
from services.moderation.tier2.scoring import score_content as score
from zapcore.jobs import build_worker, run_worker
from zapcore.logging import get_logger
from zapcore.settings import PlatformSettings

log = get_logger(__name__)


async def score_content(
    ctx: dict[str, Any], kind: str, content_id: str, author_id: str, text: str, version: int
) -> str:
    resources: ModerationResources = ctx["resources"]
    try:
        # Loading a model takes seconds: off the event loop, once per worker.
        classifier: Classifier | None = ctx.get("classifier")
        if classifier is None:
            classifier = await asyncio.to_thread(
                load_classifier,
                resources.settings.detoxify_checkpoint,
                resources.settings.detoxify_config_dir,
            )
    except ModelUnavailable as error:
        # The content stays unscored (not silently clean); feed asks again later too.
        log.warning("moderation.model_unavailable", error=str(error))
        raise Retry(defer=30) from error
    ctx["classifier"] = classifier
    outcome = await score(
        resources,
        classifier,
        kind=kind,
        content_id=uuid.UUID(content_id),
        author_id=uuid.UUID(author_id) if author_id else None,
        text=text,
        version=version,
    )
    return outcome.value


async def startup(ctx: dict[str, Any]) -> None:
    ctx["resources"] = ModerationResources.open(ctx["platform"], ctx["settings"])


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["resources"].close()


def moderation_worker(
    platform: PlatformSettings, settings: ModerationSettings, *, handle_signals: bool = True
) -> Worker:
    return build_worker(
        queue=JOB_QUEUE,
        redis_url=platform.redis_url,
        functions=[score_content],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
        job_timeout=60,
        # No results kept: a job id blocks duplicates only while queued or running.
        keep_result=0,
    )


def main() -> None:
    platform, settings = PlatformSettings(), ModerationSettings()
    if platform.is_production:
        settings.check_production(platform)
    run_worker(
        "moderation-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: moderation_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
