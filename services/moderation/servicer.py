"""ModerationService over gRPC: decode, check the caller, call the tier, encode."""

from __future__ import annotations

from typing import Any

from services.moderation.converters import (
    SOURCE_NAMES,
    STATUS_NAMES,
    decision_to_proto,
    item_to_proto,
    report_to_proto,
)
from services.moderation.kinds import action_name, kind_name
from services.moderation.models import ItemStatus
from services.moderation.repository import ModerationRepository
from services.moderation.resources import JOB_QUEUE, ModerationResources
from services.moderation.review.service import ReportForm, Review
from zap.common.v1 import common_pb2
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.errors import InvalidArgument
from zapcore.identity import require_moderator, require_user_id
from zapcore.ids import parse_id
from zapcore.jobs import enqueue
from zapcore.pagination import page_limit

Context = Any
# Far beyond any post or comment; keeps a hostile caller from making the check slow.
MAX_TEXT_CHARS = 20_000


def score_job_id(kind: str, content_id: str, version: int) -> str:
    # While a job for this version is queued or running, a repeat request joins it; the
    # worker keeps no results, so a later request (feed asking again for content still
    # unscored) runs again, and finds the score recorded if it already was.
    return f"score:{kind}:{content_id}:{version}"


class ModerationServicer(moderation_pb2_grpc.ModerationServiceServicer):
    def __init__(self, resources: ModerationResources) -> None:
        self._r = resources
        self._review = Review(resources)

    async def CheckText(
        self, request: moderation_pb2.CheckTextRequest, context: Context
    ) -> moderation_pb2.CheckTextResponse:
        _check_length(request.text)
        verdict = self._r.rules.check(request.text)
        return moderation_pb2.CheckTextResponse(
            verdict=moderation_pb2.VERDICT_REJECT
            if verdict.reject
            else moderation_pb2.VERDICT_ALLOW,
            score=verdict.score,
            reasons=list(verdict.reasons),
        )

    async def ScoreContent(
        self, request: moderation_pb2.ScoreContentRequest, context: Context
    ) -> moderation_pb2.ScoreContentResponse:
        kind = kind_name(request.content_kind)
        content_id = parse_id(request.content_id, "content_id")
        author_id = parse_id(request.author_id, "author_id") if request.author_id else None
        _check_length(request.text)
        version = max(1, request.version)
        # arq refuses a second job with the same id while the first is queued or running.
        await enqueue(
            self._r.jobs,
            "score_content",
            kind,
            str(content_id),
            str(author_id or ""),
            request.text,
            version,
            _job_id=score_job_id(kind, str(content_id), version),
            _queue_name=JOB_QUEUE,
        )
        return moderation_pb2.ScoreContentResponse()

    async def Report(
        self, request: moderation_pb2.ReportRequest, context: Context
    ) -> moderation_pb2.ReportResponse:
        if request.reason not in moderation_pb2.ReportReason.values() or request.reason == 0:
            raise InvalidArgument(
                "reason is required", fields={"reason": "one of the listed reasons"}
            )
        _check_length(request.text)
        report_id = await self._review.report(
            ReportForm(
                reporter_id=require_user_id(),
                kind=kind_name(request.content_kind),
                content_id=parse_id(request.content_id, "content_id"),
                author_id=parse_id(request.author_id, "author_id") if request.author_id else None,
                reason=request.reason,
                note=request.note,
                text=request.text,
            )
        )
        return moderation_pb2.ReportResponse(report_id=str(report_id))

    async def ListQueue(
        self, request: moderation_pb2.ListQueueRequest, context: Context
    ) -> moderation_pb2.ListQueueResponse:
        require_moderator()
        statuses = [STATUS_NAMES[s] for s in request.statuses if s in STATUS_NAMES] or [
            ItemStatus.OPEN,
            ItemStatus.CLAIMED,
        ]
        source = SOURCE_NAMES.get(request.source)
        kind = kind_name(request.content_kind) if request.content_kind else None
        items, next_cursor = await self._review.queue(
            [str(s) for s in statuses],
            str(source) if source else None,
            kind,
            request.page.cursor,
            page_limit(request.page.limit),
        )
        return moderation_pb2.ListQueueResponse(
            items=[item_to_proto(i) for i in items],
            page=common_pb2.PageInfo(next_cursor=next_cursor),
        )

    async def ClaimItem(
        self, request: moderation_pb2.ClaimItemRequest, context: Context
    ) -> moderation_pb2.ClaimItemResponse:
        moderator = require_moderator()
        assert moderator.user_id is not None
        item = await self._review.claim(moderator.user_id, parse_id(request.item_id, "item_id"))
        return moderation_pb2.ClaimItemResponse(item=item_to_proto(item))

    async def Decide(
        self, request: moderation_pb2.DecideRequest, context: Context
    ) -> moderation_pb2.DecideResponse:
        moderator = require_moderator()
        assert moderator.user_id is not None
        decision = await self._review.decide(
            moderator.user_id,
            parse_id(request.item_id, "item_id"),
            action_name(request.action),
            request.note,
        )
        return moderation_pb2.DecideResponse(decision=decision_to_proto(decision))

    async def Appeal(
        self, request: moderation_pb2.AppealRequest, context: Context
    ) -> moderation_pb2.AppealResponse:
        item = await self._review.appeal(
            require_user_id(), parse_id(request.decision_id, "decision_id"), request.text
        )
        return moderation_pb2.AppealResponse(item=item_to_proto(item))

    async def ListDecisions(
        self, request: moderation_pb2.ListDecisionsRequest, context: Context
    ) -> moderation_pb2.ListDecisionsResponse:
        require_moderator()
        kind = kind_name(request.content_kind)
        content_id = parse_id(request.content_id, "content_id")
        async with self._r.db.read_only() as session:
            decisions = await ModerationRepository(session).decisions(
                kind, content_id, page_limit(request.page.limit)
            )
        return moderation_pb2.ListDecisionsResponse(
            decisions=[decision_to_proto(d) for d in decisions]
        )

    async def ExportUserData(
        self, request: moderation_pb2.ExportUserDataRequest, context: Context
    ) -> moderation_pb2.ExportUserDataResponse:
        user_id = require_user_id()
        async with self._r.db.read_only() as session:
            repository = ModerationRepository(session)
            reports = await repository.reports_by(user_id)
            decisions = await repository.decisions_about(user_id)
        return moderation_pb2.ExportUserDataResponse(
            reports=[report_to_proto(r) for r in reports],
            decisions=[decision_to_proto(d) for d in decisions],
        )


def _check_length(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument(
            f"text is longer than {MAX_TEXT_CHARS} characters",
            fields={"text": f"at most {MAX_TEXT_CHARS} characters"},
        )
