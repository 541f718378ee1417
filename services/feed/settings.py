"""feed's settings (env prefix ZAP_FEED_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class FeedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_FEED_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_feed"
    grpc_port: int = 50052


Settings = FeedSettings
