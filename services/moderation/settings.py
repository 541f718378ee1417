"""moderation's settings (env prefix ZAP_MODERATION_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class ModerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_MODERATION_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_moderation"
    grpc_port: int = 50055


Settings = ModerationSettings
