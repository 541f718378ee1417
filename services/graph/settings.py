"""graph's settings (env prefix ZAP_GRAPH_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from zapcore.settings import ServiceSettings


class GraphSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_GRAPH_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_graph"
    grpc_port: int = 50053
    # Authors with at least this many followers are pulled at read time instead of pushed
    # into every follower's feed (SPEC §4, FANOUT_THRESHOLD).
    fanout_threshold: int = Field(default=10_000, ge=1)


Settings = GraphSettings
