"""Reports (any user) and the moderation API (moderator role; checked again by the service)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from gateway.deps import CurrentUser, FeedStub, ModerationStub, Moderator
from gateway.paging import PageParams, next_cursor
from gateway.schemas.common import ObjectIdPath, Page
from gateway.schemas.moderation import (
    ACTIONS,
    SOURCE_FILTERS,
    STATUS_FILTERS,
    AppealIn,
    DecisionIn,
    DecisionOut,
    QueueItemOut,
    ReportIn,
    ReportOut,
)
from zap.feed.v1 import feed_pb2
from zap.moderation.v1 import moderation_pb2

router = APIRouter(prefix="/api/v1", tags=["moderation"])

Id = Annotated[str, ObjectIdPath]


@router.post(
    "/posts/{post_id}/report/", status_code=status.HTTP_201_CREATED, summary="Report a post"
)
async def report_post(
    post_id: Id, body: ReportIn, user: CurrentUser, feed: FeedStub, moderation: ModerationStub
) -> ReportOut:
    # The post must be one the reporter can see; its author and text come from feed.
    post = (await feed.GetPost(feed_pb2.GetPostRequest(post_id=post_id))).post
    answer = await moderation.Report(
        moderation_pb2.ReportRequest(
            content_kind=moderation_pb2.CONTENT_KIND_POST,
            content_id=post.id,
            author_id=post.author_id,
            reason=body.reason.proto,
            note=body.note,
            text=post.content,
        )
    )
    return ReportOut(report_id=answer.report_id)


@router.get("/moderation/queue/", summary="The review queue (moderators)")
async def queue(
    page: PageParams,
    moderator: Moderator,
    moderation: ModerationStub,
    status_filter: Annotated[
        list[Literal["open", "claimed", "decided"]] | None, Query(alias="status")
    ] = None,
    source: Literal["score", "reports", "appeal"] | None = None,
) -> Page[QueueItemOut]:
    answer = await moderation.ListQueue(
        moderation_pb2.ListQueueRequest(
            statuses=[STATUS_FILTERS[s] for s in status_filter or []],
            source=SOURCE_FILTERS[source] if source else moderation_pb2.ITEM_SOURCE_UNSPECIFIED,
            page=page,
        )
    )
    return Page(
        results=[QueueItemOut.from_proto(i) for i in answer.items],
        next_cursor=next_cursor(answer.page),
    )


@router.post("/moderation/queue/{item_id}/claim/", summary="Take an item (moderators)")
async def claim(item_id: Id, moderator: Moderator, moderation: ModerationStub) -> QueueItemOut:
    answer = await moderation.ClaimItem(moderation_pb2.ClaimItemRequest(item_id=item_id))
    return QueueItemOut.from_proto(answer.item)


@router.post(
    "/moderation/queue/{item_id}/decision/",
    status_code=status.HTTP_201_CREATED,
    summary="Approve, remove or shadow-ban (moderators)",
)
async def decide(
    item_id: Id, body: DecisionIn, moderator: Moderator, moderation: ModerationStub
) -> DecisionOut:
    answer = await moderation.Decide(
        moderation_pb2.DecideRequest(item_id=item_id, action=ACTIONS[body.action], note=body.note)
    )
    return DecisionOut.from_proto(answer.decision)


@router.post(
    "/moderation/decisions/{decision_id}/appeal/",
    status_code=status.HTTP_201_CREATED,
    summary="Appeal a decision on your content (once)",
)
async def appeal(
    decision_id: Id, body: AppealIn, user: CurrentUser, moderation: ModerationStub
) -> QueueItemOut:
    answer = await moderation.Appeal(
        moderation_pb2.AppealRequest(decision_id=decision_id, text=body.text)
    )
    return QueueItemOut.from_proto(answer.item)
