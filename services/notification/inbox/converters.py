"""Rows to protobuf messages."""

from __future__ import annotations

from services.notification.delivery.rules import Kind
from services.notification.inbox.cursors import Cursors
from services.notification.models import Notification
from zap.notification.v1 import notification_pb2
from zapcore.timestamps import to_timestamp

KIND_TO_PROTO: dict[str, notification_pb2.NotificationKind.ValueType] = {
    Kind.FOLLOW: notification_pb2.NOTIFICATION_KIND_FOLLOW,
    Kind.LIKE: notification_pb2.NOTIFICATION_KIND_LIKE,
    Kind.COMMENT: notification_pb2.NOTIFICATION_KIND_COMMENT,
    Kind.MENTION: notification_pb2.NOTIFICATION_KIND_MENTION,
    Kind.SHARE: notification_pb2.NOTIFICATION_KIND_SHARE,
    Kind.MODERATION: notification_pb2.NOTIFICATION_KIND_MODERATION,
}


def notification_to_proto(
    notification: Notification, cursors: Cursors
) -> notification_pb2.Notification:
    return notification_pb2.Notification(
        id=str(notification.id),
        kind=KIND_TO_PROTO.get(notification.kind, notification_pb2.NOTIFICATION_KIND_UNSPECIFIED),
        actor_ids=[str(actor) for actor in notification.actor_ids],
        actor_count=notification.actor_count,
        post_id=str(notification.post_id) if notification.post_id else "",
        comment_id=str(notification.comment_id) if notification.comment_id else "",
        action=notification.action,
        reason=notification.reason,
        read=notification.read_at is not None,
        created_at=to_timestamp(notification.created_at),
        updated_at=to_timestamp(notification.updated_at),
        cursor=cursors.position(notification.cursor),
    )
