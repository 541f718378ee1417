"""auth's arq worker: scheduled housekeeping.

arq services.auth.worker.WorkerSettings
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from services.auth.settings import AuthSettings
from services.auth.tokens.repository import RefreshTokenRepository
from zapcore.db import Database
from zapcore.logging import configure_logging, get_logger
from zapcore.settings import PlatformSettings

log = get_logger(__name__)
QUEUE = "zap:auth:jobs"


async def startup(ctx: dict[str, Any]) -> None:
    platform = PlatformSettings()
    configure_logging("auth-worker", platform.log_level)
    ctx["db"] = Database(AuthSettings().database_url, pool_size=2)


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


class WorkerSettings:
    queue_name = QUEUE
    redis_settings = RedisSettings.from_dsn(PlatformSettings().redis_url)
    functions: list[Any] = []
    cron_jobs = [cron(delete_expired_tokens, minute={7, 37}, unique=True, run_at_startup=False)]
    on_startup = startup
    on_shutdown = shutdown
    # Jobs whose worker died are picked up again once their lease runs out.
    job_timeout = 300
