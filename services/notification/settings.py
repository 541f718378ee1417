"""notification's settings (env prefix ZAP_NOTIFICATION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_NOTIFICATION_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_notification"
    grpc_port: int = 50056

    # --- delivery (the worker) ------------------------------------------------------------
    # Repeats (likes, comments and shares of one post; follows) join the recipient's latest
    # notification of the same kind when it was created this recently; later ones start anew.
    group_window_seconds: int = Field(default=86_400, ge=1)
    # Event consumers running side by side in one worker process (one consumer group).
    deliver_consumers: int = Field(default=4, ge=1, le=64)
    # A delivery read but not acknowledged for this long belongs to a dead worker.
    deliver_claim_idle_ms: int = Field(default=60_000, ge=100)
    # Notifications untouched for this long are deleted, with the bookkeeping behind them.
    retention_days: int = Field(default=90, ge=1)
    # Event ids remembered for idempotency (far longer than any redelivery takes).
    dedup_days: int = Field(default=7, ge=1)

    # --- live delivery (Subscribe) ---------------------------------------------------------
    # A heartbeat is sent on every stream that had nothing else to say for about this long
    # (within 20%, so streams opened together spread out); below the usual 60 s proxy idle
    # timeouts, and the gateway's WebSocket pings keep quieter links alive too.
    heartbeat_seconds: float = Field(default=25.0, gt=0)
    # Idle streams also compare their position with the database this often, so a live
    # message lost on the way (a Redis blip) arrives late instead of never.
    resync_seconds: float = Field(default=60.0, gt=0)
    # Live messages waiting for one subscriber; a subscriber that falls this far behind is
    # closed (RESOURCE_EXHAUSTED, reason slow-consumer) instead of slowing anyone else.
    subscriber_queue_size: int = Field(default=256, ge=1)
    # Open Subscribe streams per process; more are refused (RESOURCE_EXHAUSTED, overloaded).
    max_subscribers: int = Field(default=50_000, ge=1)
    # Rows read per query when replaying from a cursor.
    replay_batch_size: int = Field(default=200, ge=1, le=1000)
    # How long a new stream waits for Redis to confirm its live subscription.
    subscribe_timeout_seconds: float = Field(default=5.0, gt=0)

    # --- export ----------------------------------------------------------------------------
    export_limit: int = Field(default=10_000, ge=1)


Settings = NotificationSettings
