"""Notifications as the public API shows them, over REST and on the WebSocket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from gateway.schemas.common import StrictBody, when
from gateway.schemas.posts import AuthorOut
from zap.auth.v1 import auth_pb2
from zap.notification.v1 import notification_pb2

KindName = Literal["follow", "like", "comment", "mention", "share", "moderation", "other"]
_KIND: dict[int, KindName] = {
    notification_pb2.NOTIFICATION_KIND_FOLLOW: "follow",
    notification_pb2.NOTIFICATION_KIND_LIKE: "like",
    notification_pb2.NOTIFICATION_KIND_COMMENT: "comment",
    notification_pb2.NOTIFICATION_KIND_MENTION: "mention",
    notification_pb2.NOTIFICATION_KIND_SHARE: "share",
    notification_pb2.NOTIFICATION_KIND_MODERATION: "moderation",
}


class NotificationOut(BaseModel):
    id: str
    kind: KindName
    actors: list[AuthorOut] = Field(
        description="The most recent actors first (at most 10); accounts since deleted are left out."
    )
    actor_count: int = Field(description="Everyone who did it (ten likes: 10).")
    post_id: str | None
    comment_id: str | None
    action: str | None = Field(description='Moderation: "removed", "shadow_banned", "approved".')
    reason: str | None
    read: bool
    created_at: datetime
    updated_at: datetime
    cursor: str = Field(
        description="Position of this notification: resume the WebSocket after it "
        "(?cursor=), or mark everything up to it read."
    )

    @classmethod
    def from_proto(
        cls, item: notification_pb2.Notification, people: Mapping[str, auth_pb2.User]
    ) -> Self:
        return cls(
            id=item.id,
            kind=_KIND.get(item.kind, "other"),
            actors=[AuthorOut.from_proto(people[a]) for a in item.actor_ids if a in people],
            actor_count=item.actor_count,
            post_id=item.post_id or None,
            comment_id=item.comment_id or None,
            action=item.action or None,
            reason=item.reason or None,
            read=item.read,
            created_at=when(item.created_at),
            updated_at=when(item.updated_at),
            cursor=item.cursor,
        )


Id = Annotated[str, Field(min_length=1, max_length=64)]
Cursor = Annotated[str, Field(min_length=1, max_length=1024)]


class MarkReadIn(StrictBody):
    """Exactly one of: `ids`, `up_to_cursor` (everything up to and including it), `all`."""

    ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | None = None
    up_to_cursor: Cursor | None = None
    all: bool = False

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        chosen = sum((self.ids is not None, self.up_to_cursor is not None, self.all))
        if chosen != 1:
            raise ValueError('send exactly one of "ids", "up_to_cursor" or "all": true')
        return self


class MarkReadOut(BaseModel):
    marked: int
    unread_count: int


class UnreadCountOut(BaseModel):
    unread_count: int


# --- WebSocket messages (server to client) ----------------------------------------------------


class LiveNotification(BaseModel):
    type: Literal["notification"] = "notification"
    cursor: str
    notification: NotificationOut


class LivePosition(BaseModel):
    """`ready` once the replay is done (then live), `heartbeat` when quiet; both carry the
    position to resume from."""

    type: Literal["ready", "heartbeat"]
    cursor: str
    sent_at: datetime


class LivePong(BaseModel):
    type: Literal["pong"] = "pong"
