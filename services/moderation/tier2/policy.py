"""What a tier-2 score means: remove, shadow-ban, send to humans, or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    CLEAN = "clean"
    REVIEW = "review"
    SHADOW_BAN = "shadow_ban"
    REMOVE = "remove"


@dataclass(frozen=True)
class Thresholds:
    remove_at: float = 0.85
    shadow_ban_at: float = 0.70
    review_at: float = 0.40

    def __post_init__(self) -> None:
        if not 0 < self.review_at <= self.shadow_ban_at <= self.remove_at <= 1:
            raise ValueError("thresholds must satisfy 0 < review <= shadow-ban <= remove <= 1")

    def outcome(self, score: float) -> tuple[Outcome, float | None]:
        """The outcome and the threshold that applied (None when clean)."""
        if score >= self.remove_at:
            return Outcome.REMOVE, self.remove_at
        if score >= self.shadow_ban_at:
            return Outcome.SHADOW_BAN, self.shadow_ban_at
        if score >= self.review_at:
            return Outcome.REVIEW, self.review_at
        return Outcome.CLEAN, None
