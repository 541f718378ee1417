"""NotificationService over gRPC: decode the request, call the domain code, encode the answer.

Every RPC acts as the caller (the verified user in the identity).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.notification.inbox.converters import notification_to_proto
from services.notification.inbox.service import Inbox
from services.notification.live.hub import LiveHub
from services.notification.live.stream import LiveStream
from services.notification.resources import NotificationResources
from zap.common.v1 import common_pb2
from zap.notification.v1 import notification_pb2, notification_pb2_grpc
from zapcore.identity import require_user_id

Context = Any  # grpc.aio.ServicerContext; the interceptor has already bound identity and trace


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, resources: NotificationResources, hub: LiveHub) -> None:
        self._r = resources
        self._inbox = Inbox(resources)
        self._live = LiveStream(resources, hub)

    async def ListNotifications(
        self, request: notification_pb2.ListNotificationsRequest, context: Context
    ) -> notification_pb2.ListNotificationsResponse:
        page = await self._inbox.page(
            require_user_id(),
            request.page.cursor,
            request.page.limit,
            unread_only=request.unread_only,
        )
        return notification_pb2.ListNotificationsResponse(
            notifications=[notification_to_proto(n, self._r.cursors) for n in page.items],
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def MarkRead(
        self, request: notification_pb2.MarkReadRequest, context: Context
    ) -> notification_pb2.MarkReadResponse:
        result = await self._inbox.mark_read(
            require_user_id(), list(request.notification_ids), request.up_to_cursor
        )
        return notification_pb2.MarkReadResponse(
            marked=result.marked, unread_count=result.unread_count
        )

    async def GetUnreadCount(
        self, request: notification_pb2.GetUnreadCountRequest, context: Context
    ) -> notification_pb2.GetUnreadCountResponse:
        count = await self._inbox.unread_count(require_user_id())
        return notification_pb2.GetUnreadCountResponse(unread_count=count)

    async def Subscribe(
        self, request: notification_pb2.SubscribeRequest, context: Context
    ) -> AsyncIterator[notification_pb2.SubscribeResponse]:
        async for response in self._live.subscribe(require_user_id(), request.cursor):
            yield response

    async def ExportUserData(
        self, request: notification_pb2.ExportUserDataRequest, context: Context
    ) -> notification_pb2.ExportUserDataResponse:
        rows = await self._inbox.export(require_user_id())
        return notification_pb2.ExportUserDataResponse(
            notifications=[notification_to_proto(n, self._r.cursors) for n in rows]
        )
