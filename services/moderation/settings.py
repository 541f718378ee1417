"""moderation's settings (env prefix ZAP_MODERATION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.moderation.tier1.rules import DEFAULT_SPAM_PHRASES, RuleSet
from zapcore.settings import ServiceSettings


class ModerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ZAP_MODERATION_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/zap_moderation"
    grpc_port: int = 50055

    # Tier 1 (JSON lists in the environment, e.g. ZAP_MODERATION_BLOCKED_DOMAINS='["x.test"]').
    blocked_terms: list[str] = []
    blocked_domains: list[str] = []
    spam_phrases: list[str] = list(DEFAULT_SPAM_PHRASES)
    # Tier-1 score at or above which content is refused before it is stored.
    reject_at: float = Field(default=0.9, gt=0, le=1)

    def rules(self) -> RuleSet:
        return RuleSet(
            blocked_terms=frozenset(t.casefold() for t in self.blocked_terms),
            blocked_domains=frozenset(
                d.casefold().removeprefix("www.") for d in self.blocked_domains
            ),
            spam_phrases=tuple(self.spam_phrases),
            reject_at=self.reject_at,
        )


Settings = ModerationSettings
