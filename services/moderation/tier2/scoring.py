"""Tier 2: score one version of a post or comment and apply what the score means.

Runs in the moderation worker, at least once per request. Feed is told first (idempotent),
then the score is recorded; a re-run finds the score recorded and stops, so an outcome is
applied once. If the model cannot score, the job fails and the content stays unscored in
feed, whose sweeper asks again later.

A human's decision outranks a score whenever either comes: feed keeps the visibility a
moderator decided (and records only the score's trust penalty), and a score recorded after a
decision decides, announces and queues nothing.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc

from services.moderation.models import Action, Decision, ItemSource, QueueItem, Score
from services.moderation.repository import ModerationRepository
from services.moderation.resources import ModerationResources
from services.moderation.tier2.classifiers import Classifier
from services.moderation.tier2.policy import Outcome
from zap.auth.v1 import auth_pb2
from zap.common.v1 import common_pb2
from zap.events.v1 import events_pb2
from zap.feed.v1 import feed_pb2
from zapcore.events import MODERATION
from zapcore.identity import acting_as_service
from zapcore.logging import get_logger

log = get_logger(__name__)

_VISIBILITY = {
    Outcome.CLEAN: common_pb2.VISIBILITY_VISIBLE,
    Outcome.REVIEW: common_pb2.VISIBILITY_VISIBLE,
    Outcome.SHADOW_BAN: common_pb2.VISIBILITY_SHADOW_BANNED,
    Outcome.REMOVE: common_pb2.VISIBILITY_REMOVED,
}
_FEED_KIND = {"post": feed_pb2.CONTENT_KIND_POST, "comment": feed_pb2.CONTENT_KIND_COMMENT}
_EVENT_KIND = {"post": events_pb2.CONTENT_KIND_POST, "comment": events_pb2.CONTENT_KIND_COMMENT}


async def score_content(
    resources: ModerationResources,
    classifier: Classifier,
    *,
    kind: str,
    content_id: uuid.UUID,
    author_id: uuid.UUID | None,
    text: str,
    version: int,
) -> Outcome:
    [score] = await asyncio.to_thread(classifier.score, [text])
    outcome, threshold = resources.thresholds.outcome(score)
    try:
        with acting_as_service():
            await resources.feed.SetModerationState(
                feed_pb2.SetModerationStateRequest(
                    content_kind=_FEED_KIND[kind],
                    content_id=str(content_id),
                    visibility=_VISIBILITY[outcome],
                    moderation_score=score,
                    source_id=f"score:{kind}:{content_id}:{version}",
                )
            )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        # Deleted meanwhile (by its author, or with their account): nothing to record.
        log.info("moderation.content_gone", content_id=str(content_id))
        return outcome
    async with resources.db.unit_of_work() as session:
        repository = ModerationRepository(session)
        if author_id is not None:
            # Held so the deletion cascade cannot run between the check and the record: an
            # account deleted while the job waited must not come back in a score.
            await repository.hold_author(author_id)
            if not await _author_exists(resources, author_id):
                return outcome
        recorded = await repository.add_score(
            Score(
                content_kind=kind,
                content_id=content_id,
                version=version,
                author_id=author_id,
                score=score,
                model=classifier.name,
                model_version=classifier.version,
            )
        )
        if not recorded:
            return outcome  # a re-run: everything below happened the first time
        if await repository.decided_by_a_human(kind, content_id):
            # Late (the model was down or behind): a moderator's decision stands, in feed
            # too, so nothing is decided, announced or queued over it.
            log.info("moderation.scored_after_decision", content_id=str(content_id))
            return outcome
        if outcome in (Outcome.REMOVE, Outcome.SHADOW_BAN):
            decision = await repository.add_decision(
                Decision(
                    content_kind=kind,
                    content_id=content_id,
                    author_id=author_id,
                    action=Action(outcome.value),
                    model=classifier.name,
                    model_version=classifier.version,
                    score=score,
                    threshold=threshold,
                    automatic=True,
                    note=f"score {score:.3f} >= {threshold}",
                )
            )
            event = events_pb2.ModerationDecided(
                decision_id=str(decision.id),
                content_kind=_EVENT_KIND[kind],
                content_id=str(content_id),
                author_id=str(author_id or ""),
                action=outcome.value,
                reason=decision.note,
            )
            await resources.outbox.stage(session, MODERATION, event)
        elif outcome == Outcome.REVIEW:
            await repository.enqueue(
                QueueItem(
                    content_kind=kind,
                    content_id=content_id,
                    author_id=author_id,
                    source=ItemSource.SCORE,
                    score=score,
                    model=classifier.name,
                    text=text,
                )
            )
    log.info(
        "moderation.scored", content_id=str(content_id), score=round(score, 4), outcome=outcome
    )
    return outcome


async def _author_exists(resources: ModerationResources, author_id: uuid.UUID) -> bool:
    with acting_as_service():
        answer = await resources.auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=[str(author_id)]))
    return bool(answer.users)
