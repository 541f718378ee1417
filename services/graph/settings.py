"""graph's settings (env prefix ZAP_GRAPH_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class GraphSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_GRAPH_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_graph"
    grpc_port: int = 50053


Settings = GraphSettings
