"""moderation's settings (env prefix ZAP_MODERATION_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.moderation.tier1.rules import DEFAULT_SPAM_PHRASES, RuleSet
from services.moderation.tier2.policy import Thresholds
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

    # Tier 2: Detoxify weights on local disk (with the `ml` extra installed); empty for the
    # model that ships with alt-profanity-check. The config dir holds the base model's
    # transformers config and tokenizer files (roberta-base for `unbiased`), so that nothing
    # is fetched from the Hugging Face hub; without it only the local Hugging Face cache is
    # looked at.
    detoxify_checkpoint: Path | None = None
    detoxify_config_dir: Path | None = None
    remove_at: float = Field(default=0.85, gt=0, le=1)
    shadow_ban_at: float = Field(default=0.70, gt=0, le=1)
    review_at: float = Field(default=0.40, gt=0, le=1)
    # Tier 3: this many distinct reporters move an item to the front of the queue.
    escalate_at: int = Field(default=5, ge=1)
    # A claim lapses after this long, so an abandoned item goes back to the queue.
    claim_minutes: int = Field(default=15, ge=1)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            remove_at=self.remove_at, shadow_ban_at=self.shadow_ban_at, review_at=self.review_at
        )

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
