"""What an event means for whom: pure rules, no I/O.

An event becomes zero or more intents, one per recipient. Kinds differ in two ways:
- grouped kinds (likes, comments and shares of one post, follows) join the recipient's
  latest notification of the same key while it is recent, so ten likes are one notification
  with a count;
- once-per-actor kinds (likes, shares, follows) notify once per actor, ever: like, unlike,
  like again is one notification. Comments and mentions are new content every time, so each
  one notifies (a redelivered event never does: delivery is idempotent by event id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from zap.events.v1 import events_pb2

# Actors kept on a grouped notification, most recent first (the contract says at most 10).
ACTORS_SHOWN = 10


class Kind(StrEnum):
    FOLLOW = "follow"
    LIKE = "like"
    COMMENT = "comment"
    MENTION = "mention"
    SHARE = "share"
    MODERATION = "moderation"


GROUPED = frozenset({Kind.FOLLOW, Kind.LIKE, Kind.COMMENT, Kind.SHARE})
ONCE_PER_ACTOR = frozenset({Kind.FOLLOW, Kind.LIKE, Kind.SHARE})

# ModerationDecided.action -> what the notification says happened.
_OUTCOMES = {"remove": "removed", "shadow_ban": "shadow_banned", "approve": "approved"}
# What the author of the content is told. A shadow ban is, by design, invisible to its
# author, and an approval is no news to someone who never learned of the report.
_TOLD_TO_AUTHOR = frozenset({"removed"})


@dataclass(frozen=True, slots=True)
class Intent:
    """One notification to deliver (or to fold into an existing one)."""

    recipient_id: uuid.UUID
    kind: Kind
    actor_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    comment_id: uuid.UUID | None = None
    action: str = ""
    reason: str = ""

    @property
    def grouped(self) -> bool:
        return self.kind in GROUPED

    @property
    def once_per_actor(self) -> bool:
        return self.kind in ONCE_PER_ACTOR

    @property
    def group_key(self) -> str:
        """Repeats with the same key are one notification; empty when never grouped."""
        if not self.grouped:
            return ""
        if self.kind is Kind.FOLLOW:
            return "follow"
        return f"{self.kind.value}:{self.post_id}"

    @property
    def self_inflicted(self) -> bool:
        return self.actor_id is not None and self.actor_id == self.recipient_id


def intents(env: events_pb2.Envelope) -> list[Intent]:
    """The notifications an event asks for; ValueError when its ids are malformed."""
    kind = env.WhichOneof("payload")
    if kind == "followed":
        event = env.followed
        return [Intent(_id(event.followee_id), Kind.FOLLOW, actor_id=_id(event.follower_id))]
    if kind == "liked":
        liked = env.liked
        return [
            Intent(
                _id(liked.post_author_id),
                Kind.LIKE,
                actor_id=_id(liked.user_id),
                post_id=_id(liked.post_id),
            )
        ]
    if kind == "shared":
        shared = env.shared
        return [
            Intent(
                _id(shared.post_author_id),
                Kind.SHARE,
                actor_id=_id(shared.user_id),
                post_id=_id(shared.post_id),
            )
        ]
    if kind == "commented":
        commented = env.commented
        return [
            Intent(
                _id(commented.post_author_id),
                Kind.COMMENT,
                actor_id=_id(commented.user_id),
                post_id=_id(commented.post_id),
                comment_id=_id(commented.comment_id),
            )
        ]
    if kind == "mentioned":
        mentioned = env.mentioned
        return [
            Intent(
                _id(mentioned.mentioned_user_id),
                Kind.MENTION,
                actor_id=_id(mentioned.author_id),
                post_id=_optional_id(mentioned.post_id),
                comment_id=_optional_id(mentioned.comment_id),
            )
        ]
    if kind == "moderation_decided":
        return _moderation(env.moderation_decided)
    # PostCreated, PostDeleted, Unfollowed, Blocked, ...: nothing to tell anyone.
    return []


def _moderation(decision: events_pb2.ModerationDecided) -> list[Intent]:
    outcome = _OUTCOMES.get(decision.action)
    if outcome is None:
        return []
    content_id = _id(decision.content_id)
    on_comment = decision.content_kind == events_pb2.CONTENT_KIND_COMMENT
    post_id, comment_id = (None, content_id) if on_comment else (content_id, None)
    author = _optional_id(decision.author_id)
    recipients: list[uuid.UUID] = []
    if author is not None and outcome in _TOLD_TO_AUTHOR:
        recipients.append(author)
    recipients.extend(_id(reporter) for reporter in decision.reporter_ids)
    # Reporters learn the outcome; someone both author and reporter is told once.
    return [
        Intent(
            recipient,
            Kind.MODERATION,
            post_id=post_id,
            comment_id=comment_id,
            action=outcome,
            reason=decision.reason[:500],
        )
        for recipient in dict.fromkeys(recipients)
    ]


def most_recent_actors(acted_at: Mapping[uuid.UUID, datetime]) -> list[uuid.UUID]:
    """The actors to show, most recent first. Events are handled side by side, so the order
    comes from when each actor acted, not from when the worker got to it."""
    ranked = sorted(acted_at.items(), key=lambda pair: (pair[1], pair[0]), reverse=True)
    return [actor for actor, _ in ranked[:ACTORS_SHOWN]]


def _id(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _optional_id(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None
