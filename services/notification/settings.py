"""notification's settings (env prefix ZAP_NOTIFICATION_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_NOTIFICATION_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_notification"
    grpc_port: int = 50056


Settings = NotificationSettings
