"""Writes: posts, likes, comments, shares and deletes, with their events and jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from services.feed.models import Comment, Post
from services.feed.posts.audience import NOBODY, Exclusions
from services.feed.posts.cards import Offer
from services.feed.posts.converters import post_to_proto
from services.feed.posts.repository import (
    VISIBLE,
    PostRecord,
    PostRepository,
    PostWrites,
    ViewedPost,
    changed_posts,
    visible_to,
)
from services.feed.posts.scoring import request_score
from services.feed.posts.text import hashtags, mentioned_usernames, normalise_content
from services.feed.resources import JOB_QUEUE, FeedResources
from zap.auth.v1 import auth_pb2
from zap.events.v1 import events_pb2
from zap.media.v1 import media_pb2
from zap.moderation.v1 import moderation_pb2
from zapcore.db import after_commit
from zapcore.errors import InvalidArgument, NotFound, PermissionDenied
from zapcore.events import FEED
from zapcore.ids import new_id, parse_id, parse_ids
from zapcore.jobs import enqueue
from zapcore.logging import get_logger

log = get_logger(__name__)


def fanout_job_id(post_id: uuid.UUID) -> str:
    return f"fanout:{post_id}"


class Posting:
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources

    async def create_post(
        self,
        author_id: uuid.UUID,
        content: str,
        explicit_hashtags: Sequence[str],
        media_ids: Sequence[str],
        parent_post_id: str,
    ) -> PostRecord:
        """The post as committed, with its fanout owed (and queued) and its events staged
        in the same transaction."""
        settings = self._r.settings
        text = normalise_content(content, max_chars=settings.content_max_chars)
        tags = hashtags(text, list(explicit_hashtags), limit=settings.max_hashtags)
        media = await self._own_ready_media(author_id, media_ids)
        parent = parse_id(parent_post_id, "parent_post_id") if parent_post_id else None
        await self._check_text(moderation_pb2.CONTENT_KIND_POST, text, "content")
        mentions = await self._mentions(text, author_id)
        new = PostRecord(
            id=new_id(),
            author_id=author_id,
            content=text,
            hashtags=tags,
            mention_ids=mentions,
            media_ids=media,
            parent_post_id=parent,
            like_count=0,
            comment_count=0,
            share_count=0,
            visibility=VISIBLE,
            created_at=datetime.now(UTC),
            deleted_at=None,
            version=0,
            moderation_score=None,
        )
        exclusions = await self._exclusions(author_id) if parent is not None else NOBODY
        async with self._r.db.driver_unit_of_work() as connection:
            post = await PostWrites(connection).create(new, exclusions.blocked)
            if post is None:
                raise _not_found("parent_post_id")
            created = events_pb2.PostCreated(
                post_id=str(post.id),
                author_id=str(post.author_id),
                parent_post_id=str(post.parent_post_id or ""),
            )
            staged = [await self._r.outbox.stage_on(connection, FEED, created)]
            for user_id in mentions:
                mentioned = events_pb2.Mentioned(
                    mentioned_user_id=str(user_id), author_id=str(author_id), post_id=str(post.id)
                )
                staged.append(await self._r.outbox.stage_on(connection, FEED, mentioned))
        for event in staged:
            await self._r.outbox.publish(event)
        await self._announce_post(post)
        return post

    async def delete_post(self, post_id: str, user_id: uuid.UUID) -> None:
        pid = parse_id(post_id, "post_id")
        async with self._r.db.unit_of_work() as session:
            store = PostRepository(session)
            post = await store.get_for_update(pid)
            if post is None or not visible_to(post, user_id):
                if post is not None and post.deleted_at is not None and post.author_id == user_id:
                    # Deleting twice is harmless, and a retry after a cache failure writes
                    # the gone card again.
                    self._gone_after_commit(session, pid, post.version)
                    return
                raise NotFound("post not found", reason="post-not-found")
            if post.author_id != user_id:
                raise PermissionDenied("only the author may delete a post", reason="not-author")
            version = await store.soft_delete(post, datetime.now(UTC))
            self._gone_after_commit(session, pid, version)
            # Its media leave the store with it (media's consumer), unless another live post
            # of the author still shows them.
            shown = await store.media_still_shown(post)
            event = events_pb2.PostDeleted(
                post_id=str(pid),
                author_id=str(user_id),
                media_ids=[str(m) for m in post.media_ids if m not in shown],
            )
            await self._r.outbox.stage(session, FEED, event)

    async def like(self, post_id: str, user_id: uuid.UUID, *, liked: bool) -> int:
        """The post's like count once the user likes it (or no longer does); liking twice
        counts once, unliking a post not liked changes nothing."""
        pid = parse_id(post_id, "post_id")
        exclusions = await self._exclusions(user_id)
        seen = await self._r.engagement.generation(user_id)
        staged = None
        async with self._r.db.driver_unit_of_work() as connection:
            writes = PostWrites(connection)
            if liked:
                engaged = await writes.like(pid, user_id, exclusions.blocked)
            else:
                engaged = await writes.unlike(pid, user_id, exclusions.blocked)
            if engaged is None:
                raise _not_found()
            if engaged.changed is not None and liked:
                event = events_pb2.Liked(
                    user_id=str(user_id),
                    post_id=str(pid),
                    post_author_id=str(engaged.post.author_id),
                )
                staged = await self._r.outbox.stage_on(connection, FEED, event)
        if engaged.changed is not None:
            await self._r.cards.after_change([_offer(engaged.changed)])
            affinity = None
            if engaged.interaction is not None:
                affinity = (engaged.post.author_id, *engaged.interaction)
            await self._r.engagement.liked(user_id, seen, pid, liked=liked, affinity=affinity)
        if staged is not None:
            await self._r.outbox.publish(staged)
        return engaged.post.like_count

    async def share(self, post_id: str, user_id: uuid.UUID) -> ViewedPost:
        pid = parse_id(post_id, "post_id")
        exclusions = await self._exclusions(user_id)
        seen = await self._r.engagement.generation(user_id)
        staged = None
        async with self._r.db.driver_unit_of_work() as connection:
            engaged = await PostWrites(connection).share(pid, user_id, exclusions.blocked)
            if engaged is None:
                raise _not_found()
            if engaged.changed is not None:
                event = events_pb2.Shared(
                    user_id=str(user_id),
                    post_id=str(pid),
                    post_author_id=str(engaged.post.author_id),
                )
                staged = await self._r.outbox.stage_on(connection, FEED, event)
        if engaged.changed is not None:
            await self._r.cards.after_change([_offer(engaged.changed)])
            await self._r.engagement.shared(user_id, seen, pid)
        if staged is not None:
            await self._r.outbox.publish(staged)
        return ViewedPost(engaged.post, liked=engaged.liked_before, shared=True)

    async def comment(self, post_id: str, user_id: uuid.UUID, content: str) -> Comment:
        pid = parse_id(post_id, "post_id")
        text = normalise_content(content, max_chars=self._r.settings.comment_max_chars)
        await self._check_text(moderation_pb2.CONTENT_KIND_COMMENT, text, "content")
        mentions = await self._mentions(text, user_id)
        exclusions = await self._exclusions(user_id)
        async with self._r.db.unit_of_work() as session:
            post = await self._visible_post(session, pid, user_id, exclusions)
            comment = Comment(
                id=new_id(),
                post_id=pid,
                author_id=user_id,
                content=text,
                mention_ids=mentions,
                created_at=datetime.now(UTC),
            )
            await PostRepository(session).add_comment(comment, post)
            changed = changed_posts(session)
            # The count, and the commenter's affinity to the author (their entry).
            after_commit(session, lambda: self._engaged(user_id, changed))
            event = events_pb2.Commented(
                comment_id=str(comment.id),
                user_id=str(user_id),
                post_id=str(pid),
                post_author_id=str(post.author_id),
            )
            await self._r.outbox.stage(session, FEED, event)
            after_commit(
                session, lambda: self._score("comment", comment.id, user_id, comment.content)
            )
            await self._stage_mentions(session, user_id, mentions, pid, comment.id)
        return comment

    def _gone_after_commit(self, session: AsyncSession, post_id: uuid.UUID, version: int) -> None:
        gone = [Offer(post_id, version, None)]
        after_commit(session, lambda: self._r.cards.after_change(gone, strict=True))

    async def _engaged(self, user_id: uuid.UUID, floors: dict[uuid.UUID, int]) -> None:
        """A comment committed: the post's card takes the new count from the database, and
        so does the user's own state (their affinity to the author)."""
        await self._r.cards.after_change(floors=floors)
        await self._r.engagement.changed(user_id)

    async def _visible_post(
        self,
        session: AsyncSession,
        post_id: uuid.UUID,
        viewer_id: uuid.UUID,
        exclusions: Exclusions,
        *,
        field: str = "post_id",
    ) -> Post:
        """The post if the viewer may see it; NotFound otherwise (existence is not leaked)."""
        post = await PostRepository(session).get(post_id)
        if post is None or not visible_to(post, viewer_id) or exclusions.blocks(post.author_id):
            raise _not_found(field)
        return post

    async def _exclusions(self, viewer_id: uuid.UUID) -> Exclusions:
        # Asked before the transaction opens, so no row lock waits on a network call.
        return await self._r.audience.exclusions(viewer_id)

    async def _own_ready_media(
        self, owner_id: uuid.UUID, media_ids: Sequence[str]
    ) -> list[uuid.UUID]:
        if not media_ids:
            return []
        if len(media_ids) > self._r.settings.max_media:
            limit = self._r.settings.max_media
            raise InvalidArgument(
                f"at most {limit} media per post", fields={"media_ids": f"at most {limit}"}
            )
        ids = list(dict.fromkeys(parse_ids(list(media_ids), "media_ids")))
        answer = await self._r.media.GetMedias(
            media_pb2.GetMediasRequest(media_ids=[str(i) for i in ids])
        )
        usable = {
            uuid.UUID(m.id)
            for m in answer.medias
            if m.owner_id == str(owner_id) and m.status == media_pb2.MEDIA_STATUS_READY
        }
        missing = [str(i) for i in ids if i not in usable]
        if missing:
            raise InvalidArgument(
                "media must be your own uploads, processed and ready",
                reason="media-not-usable",
                fields={"media_ids": f"not usable: {', '.join(missing)}"},
            )
        return ids

    async def _check_text(self, kind: int, text: str, field: str) -> None:
        """Tier-1 moderation. Clear spam is refused; if the check itself is unavailable the
        content goes on unchecked (the asynchronous tier still scores it)."""
        try:
            verdict = await self._r.moderation.CheckText(
                moderation_pb2.CheckTextRequest(content_kind=kind, text=text),  # type: ignore[arg-type]
                timeout=self._r.settings.moderation_check_timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            log.warning("feed.tier1_unavailable", code=error.code().name)
            return
        if verdict.verdict == moderation_pb2.VERDICT_REJECT:
            raise InvalidArgument(
                "this looks like spam and was not published",
                reason="content-rejected",
                fields={field: ", ".join(verdict.reasons) or "rejected by the content rules"},
            )

    async def _announce_post(self, post: PostRecord) -> None:
        # Best effort: a lost enqueue is caught by the outbox sweeper; the post stands.
        try:
            await enqueue(
                self._r.jobs,
                "fanout_post",
                str(post.id),
                _job_id=fanout_job_id(post.id),
                _queue_name=JOB_QUEUE,
            )
        except RedisError as error:
            log.warning("feed.fanout_enqueue_failed", post_id=str(post.id), error=str(error))
        await self._score("post", post.id, post.author_id, post.content)

    async def _mentions(self, text: str, author_id: uuid.UUID) -> list[uuid.UUID]:
        """The ids of the existing users @mentioned in the text (never the author)."""
        usernames = mentioned_usernames(text)
        if not usernames:
            return []
        try:
            answer = await self._r.auth.GetUsersByUsernames(
                auth_pb2.GetUsersByUsernamesRequest(usernames=usernames)
            )
        except grpc.aio.AioRpcError as error:
            # The text stands; only the links to the mentioned accounts are lost.
            log.warning("feed.mentions_unresolved", code=error.code().name)
            return []
        return [uid for u in answer.users if (uid := uuid.UUID(u.id)) != author_id]

    async def _stage_mentions(
        self,
        session: AsyncSession,
        author_id: uuid.UUID,
        mentioned: list[uuid.UUID],
        post_id: uuid.UUID,
        comment_id: uuid.UUID | None = None,
    ) -> None:
        for user_id in mentioned:
            await self._r.outbox.stage(
                session,
                FEED,
                events_pb2.Mentioned(
                    mentioned_user_id=str(user_id),
                    author_id=str(author_id),
                    post_id=str(post_id),
                    comment_id=str(comment_id or ""),
                ),
            )

    async def _score(
        self, kind: str, content_id: uuid.UUID, author_id: uuid.UUID, text: str
    ) -> None:
        # Not awaited: the writer does not wait for moderation (the sweeper asks again).
        self._r.in_background(request_score(self._r, kind, content_id, author_id, text))


def _not_found(field: str = "post_id") -> NotFound:
    """What every write on a post the user may not see answers: existence is not leaked."""
    return NotFound("post not found", reason="post-not-found", fields={field: "no such post"})


def _offer(row: PostRecord) -> Offer:
    """The card of a row as a write committed it."""
    if row.deleted_at is not None:
        return Offer(row.id, row.version, None)
    return Offer(row.id, row.version, post_to_proto(ViewedPost(row)), row.moderation_score)
