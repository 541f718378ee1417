"""Reports, the review queue and decisions as the public API shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.schemas.common import StrictBody, when
from zap.moderation.v1 import moderation_pb2


class ReportReason(StrEnum):
    SPAM = "spam"
    HARASSMENT = "harassment"
    HATE = "hate"
    VIOLENCE = "violence"
    NUDITY = "nudity"
    MISINFORMATION = "misinformation"
    SELF_HARM = "self_harm"
    OTHER = "other"

    @property
    def proto(self) -> moderation_pb2.ReportReason.ValueType:
        return moderation_pb2.ReportReason.Value(f"REPORT_REASON_{self.name}")


class ReportIn(StrictBody):
    reason: ReportReason
    note: Annotated[str, Field(max_length=2000)] = ""


class ReportOut(BaseModel):
    report_id: str


Action = Literal["approve", "remove", "shadow_ban"]
ACTIONS: dict[str, moderation_pb2.Action.ValueType] = {
    "approve": moderation_pb2.ACTION_APPROVE,
    "remove": moderation_pb2.ACTION_REMOVE,
    "shadow_ban": moderation_pb2.ACTION_SHADOW_BAN,
}
_KINDS: dict[int, str] = {
    moderation_pb2.CONTENT_KIND_POST: "post",
    moderation_pb2.CONTENT_KIND_COMMENT: "comment",
}
_STATUSES: dict[moderation_pb2.ItemStatus.ValueType, str] = {
    moderation_pb2.ITEM_STATUS_OPEN: "open",
    moderation_pb2.ITEM_STATUS_CLAIMED: "claimed",
    moderation_pb2.ITEM_STATUS_DECIDED: "decided",
}
_SOURCES: dict[moderation_pb2.ItemSource.ValueType, str] = {
    moderation_pb2.ITEM_SOURCE_SCORE: "score",
    moderation_pb2.ITEM_SOURCE_REPORTS: "reports",
    moderation_pb2.ITEM_SOURCE_APPEAL: "appeal",
}
_ACTION_NAMES: dict[int, str] = {value: name for name, value in ACTIONS.items()}


class DecisionIn(StrictBody):
    action: Action
    note: Annotated[str, Field(max_length=2000)] = ""


class AppealIn(StrictBody):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class QueueItemOut(BaseModel):
    id: str
    content_kind: str
    content_id: str
    author_id: str | None
    source: str
    status: str
    score: float | None
    model: str
    report_count: int
    claimed_by: str | None
    text: str
    created_at: datetime

    @classmethod
    def from_proto(cls, item: moderation_pb2.QueueItem) -> QueueItemOut:
        return cls(
            id=item.id,
            content_kind=_KINDS.get(item.content_kind, "unknown"),
            content_id=item.content_id,
            author_id=item.author_id or None,
            source=_SOURCES.get(item.source, "unknown"),
            status=_STATUSES.get(item.status, "unknown"),
            score=item.score if item.model else None,
            model=item.model,
            report_count=item.report_count,
            claimed_by=item.claimed_by or None,
            text=item.text,
            created_at=when(item.created_at),
        )


class DecisionOut(BaseModel):
    id: str
    item_id: str | None
    content_kind: str
    content_id: str
    action: str
    moderator_id: str | None
    note: str
    model: str
    model_version: str
    score: float | None
    threshold: float | None
    automatic: bool
    decided_at: datetime

    @classmethod
    def from_proto(cls, decision: moderation_pb2.Decision) -> DecisionOut:
        return cls(
            id=decision.id,
            item_id=decision.item_id or None,
            content_kind=_KINDS.get(decision.content_kind, "unknown"),
            content_id=decision.content_id,
            action=_ACTION_NAMES.get(decision.action, "unknown"),
            moderator_id=decision.moderator_id or None,
            note=decision.note,
            model=decision.model,
            model_version=decision.model_version,
            score=decision.score if decision.model else None,
            threshold=decision.threshold if decision.automatic else None,
            automatic=decision.automatic,
            decided_at=when(decision.decided_at),
        )


STATUS_FILTERS: dict[str, moderation_pb2.ItemStatus.ValueType] = {
    v: k for k, v in _STATUSES.items()
}
SOURCE_FILTERS: dict[str, moderation_pb2.ItemSource.ValueType] = {v: k for k, v in _SOURCES.items()}
