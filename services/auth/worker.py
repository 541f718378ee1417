"""auth's worker: scheduled housekeeping (expired refresh tokens).

python -m services.auth.worker
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arq import cron
from arq.worker import Worker

from services.auth.settings import AuthSettings
from services.auth.tokens.repository import RefreshTokenRepository
from zapcore.db import Database
from zapcore.jobs import build_worker, run_worker
from zapcore.logging import get_logger
from zapcore.settings import PlatformSettings

log = get_logger(__name__)
QUEUE = "zap:auth:jobs"


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = Database(ctx["settings"].database_url, pool_size=2)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].dispose()


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
        # delete_expired_tokens may also be queued on demand.
        functions=[delete_expired_tokens],
        cron_jobs=[cron(delete_expired_tokens, minute={7, 37}, unique=True, run_at_startup=False)],
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"platform": platform, "settings": settings},
        handle_signals=handle_signals,
        job_timeout=300,
    )


def main() -> None:
    platform, settings = PlatformSettings(), AuthSettings()
    if platform.is_production:
        settings.check_production()
    run_worker(
        "auth-worker",
        platform.log_level,
        settings.worker_metrics_port,
        lambda: auth_worker(platform, settings),
    )


if __name__ == "__main__":
    main()
