"""auth's worker: expired refresh tokens, announcing deletions, purging tombstones.

python -m services.auth.worker
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.worker import Worker

from services.auth.deletion.cascade import announce_due, purge
from services.auth.settings import AuthSettings
from services.auth.tokens.repository import RefreshTokenRepository
from zapcore.db import Database
from zapcore.jobs import build_worker, run_worker
from zapcore.logging import get_logger
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

log = get_logger(__name__)
QUEUE = "zap:auth:jobs"


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = Database(ctx["settings"].database_url, pool_size=2)
    ctx["events_redis"] = create_redis(ctx["platform"].redis_url)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].dispose()
    await ctx["events_redis"].aclose()


async def announce_deletions(ctx: dict[str, Any]) -> int:
    """Publish AccountDeleted for deletions whose announcement was lost, and again for those
    a service has still not reported done after the re-announce delay."""
    settings: AuthSettings = ctx["settings"]
    return await announce_due(
        ctx["db"],
        ctx["events_redis"],
        settings.deletion_services,
        timedelta(seconds=settings.deletion_reannounce_after_seconds),
    )


async def purge_deleted_accounts(ctx: dict[str, Any]) -> int:
    """Hard-delete tombstones past the grace period (by state: missed runs catch up)."""
    return await purge(ctx["db"], ctx["settings"].deletion_grace_days)


async def delete_expired_tokens(ctx: dict[str, Any]) -> int:
    """Delete refresh tokens past their expiry, in batches, so the table stays small."""
    db: Database = ctx["db"]
    total = 0
    while True:
        async with db.unit_of_work() as session:
            deleted = await RefreshTokenRepository(session).delete_expired(datetime.now(UTC))
        total += deleted
        if deleted == 0:
            break
    log.info("auth.expired_tokens_deleted", count=total)
    return total


def auth_worker(
    platform: PlatformSettings, settings: AuthSettings, *, handle_signals: bool = True
) -> Worker:
    return build_worker(
        queue=QUEUE,
        redis_url=platform.redis_url,
        # These may also be queued on demand.
        functions=[delete_expired_tokens, announce_deletions, purge_deleted_accounts],
        cron_jobs=[
            cron(delete_expired_tokens, minute={7, 37}, unique=True, run_at_startup=False),
            # Every minute: lost announcements, overdue deletions (and their gauge).
            cron(announce_deletions, second={40}, unique=True, run_at_startup=True),
            cron(purge_deleted_accounts, hour={3}, minute={17}, unique=True),
        ],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
        job_timeout=300,
    )


def main() -> None:
    platform, settings = PlatformSettings(), AuthSettings()
    if platform.is_production:
        settings.check_production(platform)
    run_worker(
        "auth-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: auth_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
