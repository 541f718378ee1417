"""Rows to protobuf messages."""

from __future__ import annotations

from services.moderation.kinds import ACTION_VALUES, KIND_VALUES
from services.moderation.models import Decision, ItemSource, ItemStatus, QueueItem, Report
from zap.moderation.v1 import moderation_pb2
from zapcore.timestamps import to_timestamp

STATUS_VALUES = {
    ItemStatus.OPEN: moderation_pb2.ITEM_STATUS_OPEN,
    ItemStatus.CLAIMED: moderation_pb2.ITEM_STATUS_CLAIMED,
    ItemStatus.DECIDED: moderation_pb2.ITEM_STATUS_DECIDED,
}
STATUS_NAMES = {value: name for name, value in STATUS_VALUES.items()}
SOURCE_VALUES = {
    ItemSource.SCORE: moderation_pb2.ITEM_SOURCE_SCORE,
    ItemSource.REPORTS: moderation_pb2.ITEM_SOURCE_REPORTS,
    ItemSource.APPEAL: moderation_pb2.ITEM_SOURCE_APPEAL,
}
SOURCE_NAMES = {value: name for name, value in SOURCE_VALUES.items()}


def item_to_proto(item: QueueItem) -> moderation_pb2.QueueItem:
    return moderation_pb2.QueueItem(
        id=str(item.id),
        content_kind=KIND_VALUES[item.content_kind],
        content_id=str(item.content_id),
        author_id=str(item.author_id or ""),
        source=SOURCE_VALUES[ItemSource(item.source)],
        status=STATUS_VALUES[ItemStatus(item.status)],
        score=item.score or 0.0,
        model=item.model,
        report_count=item.report_count,
        claimed_by=str(item.claimed_by or ""),
        created_at=to_timestamp(item.created_at),
        text=item.text,
    )


def decision_to_proto(decision: Decision) -> moderation_pb2.Decision:
    return moderation_pb2.Decision(
        id=str(decision.id),
        item_id=str(decision.item_id or ""),
        content_kind=KIND_VALUES[decision.content_kind],
        content_id=str(decision.content_id),
        author_id=str(decision.author_id or ""),
        action=ACTION_VALUES[decision.action],
        moderator_id=str(decision.moderator_id or ""),
        note=decision.note,
        model=decision.model,
        model_version=decision.model_version,
        score=decision.score or 0.0,
        threshold=decision.threshold or 0.0,
        automatic=decision.automatic,
        decided_at=to_timestamp(decision.decided_at),
    )


def report_to_proto(report: Report) -> moderation_pb2.UserReport:
    return moderation_pb2.UserReport(
        id=str(report.id),
        content_kind=KIND_VALUES[report.content_kind],
        content_id=str(report.content_id),
        reason=report.reason,  # type: ignore[arg-type]
        note=report.note,
        created_at=to_timestamp(report.created_at),
    )
