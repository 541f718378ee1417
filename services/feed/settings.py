"""feed's settings (env prefix ZAP_FEED_)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class FeedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_FEED_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_feed"
    grpc_port: int = 50052

    content_max_chars: int = Field(default=2000, ge=1)
    comment_max_chars: int = Field(default=1000, ge=1)
    max_hashtags: int = Field(default=30, ge=0)
    max_media: int = Field(default=4, ge=0)

    # Entries kept per user in the Redis feed cache.
    cache_size: int = Field(default=800, ge=20)
    # Fanout pushes into the cached feeds of users who read their feed this recently; anyone
    # else's cache has expired and is rebuilt from the database on their next read.
    active_window_seconds: int = Field(default=3 * 86400, ge=60)
    # A home-feed cursor stays valid this long (a paging session keeps its order meanwhile).
    paging_ttl_seconds: int = Field(default=1800, ge=60)
    # A home read gives the database this long (connecting, waiting for a pooled connection
    # and every query together, within the call's deadline) before it answers from the
    # cache instead, marked degraded (timeline/degraded.py).
    home_db_budget_seconds: float = Field(default=0.5, gt=0)
    # After the database failed a home read, reads skip it this long, then one read probes it.
    home_db_retry_seconds: float = Field(default=2.0, ge=0)
    # Post cards in Redis (posts/cards.py): a card is read without asking the database this
    # long after it was written (the bound on a card left stale by a lost write), and kept
    # this long after its last write for degraded reads.
    post_card_refresh_seconds: float = Field(default=60, gt=0)
    post_card_ttl_seconds: int = Field(default=86400, ge=60)
    # A viewer's likes and shares in Redis (posts/engagement.py): of the posts created in the
    # last `window_days`, at most `max_entries` of each; an entry lives `ttl_seconds`.
    engagement_window_days: int = Field(default=14, ge=1)
    engagement_max_entries: int = Field(default=2000, ge=1)
    engagement_ttl_seconds: int = Field(default=3600, ge=60)
    # A first home page's top entries (this many; 0: none) are scored again at read time
    # with their current counts, and shown in that order (timeline/home.py).
    home_rerank_candidates: int = Field(default=20, ge=0, le=100)
    # Posts of pulled (above-threshold) authors considered at read time.
    pull_window_hours: int = Field(default=72, ge=1)
    pull_max_posts: int = Field(default=200, ge=1)
    # The cron rescoring touches items of posts younger than this.
    rescore_window_hours: int = Field(default=48, ge=1)
    # Share of a rescoring run spent working; the rest is pauses between partitions.
    rescore_duty_cycle: float = Field(default=0.5, gt=0, le=1)
    # A new follow copies this many recent posts of the followee into the follower's feed.
    backfill_posts: int = Field(default=20, ge=0)
    fanout_batch_size: int = Field(default=5000, ge=1, le=10_000)
    # Outbox rows older than this without a finished fanout are queued again by the sweeper.
    sweep_after_seconds: int = Field(default=60, ge=1)
    # How often the sweeper runs, in seconds (a divisor of 60: it runs on those seconds).
    sweep_every_seconds: int = Field(default=60, ge=1, le=60)
    # An event still in the outbox this long after its change committed was not published
    # then (Redis down for that instant, the process killed): the worker's relay sends it.
    event_relay_after_seconds: float = Field(default=5.0, gt=0)
    trending_window_hours: int = Field(default=24, ge=1)
    # Tier-1 moderation is called with this deadline; if it cannot answer, posting goes on.
    moderation_check_timeout_seconds: float = Field(default=0.2, gt=0)

    @field_validator("sweep_every_seconds")
    @classmethod
    def _divides_a_minute(cls, value: int) -> int:
        if 60 % value:
            raise ValueError("must divide 60 (the sweeper runs on those seconds of a minute)")
        return value


Settings = FeedSettings
