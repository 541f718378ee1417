"""media's settings (env prefix ZAP_MEDIA_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class MediaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_MEDIA_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_media"
    grpc_port: int = 50054


Settings = MediaSettings
