"""Asking moderation's ML tier to score new posts and comments, and asking again.

Content is "unscored" (moderation_score NULL) until moderation has applied a score, unless a
human has decided it meanwhile: a score would not change what readers see of it, so it is not
asked for again. The request after each write is best effort; the sweeper asks again for
anything still unscored a minute later, so an outage of moderation or of its model only
delays scoring.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc

from services.feed.posts.repository import PostRepository
from services.feed.resources import FeedResources
from zap.moderation.v1 import moderation_pb2
from zapcore.logging import get_logger

log = get_logger(__name__)

KIND = {"post": moderation_pb2.CONTENT_KIND_POST, "comment": moderation_pb2.CONTENT_KIND_COMMENT}


async def request_score(
    resources: FeedResources, kind: str, content_id: uuid.UUID, author_id: uuid.UUID, text: str
) -> bool:
    try:
        await resources.moderation.ScoreContent(
            moderation_pb2.ScoreContentRequest(
                content_kind=KIND[kind],
                content_id=str(content_id),
                author_id=str(author_id),
                text=text,
                version=1,
            ),
            timeout=resources.settings.moderation_check_timeout_seconds * 5,
        )
    except grpc.aio.AioRpcError as error:
        log.warning("feed.score_request_failed", content_id=str(content_id), code=error.code().name)
        return False
    return True


async def request_missing_scores(resources: FeedResources) -> int:
    """Ask again for content written one minute to seven days ago, still unscored and not
    decided by a human."""
    now = datetime.now(UTC)
    async with resources.db.read_only() as session:
        missing = await PostRepository(session).unscored(
            now - timedelta(days=7), now - timedelta(minutes=1), limit=500
        )
    asked = 0
    for kind, content_id, author_id, text in missing:
        asked += await request_score(resources, kind, content_id, author_id, text)
    if missing:
        log.info("feed.scores_requested_again", count=len(missing), accepted=asked)
    return asked
