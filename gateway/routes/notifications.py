"""/api/v1/notifications/ and WS /ws/notifications/ (notification service).

The REST routes list what the deliver worker stored, with the actors' public profiles; the
WebSocket relays the live stream (protocol and close codes: gateway/live.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, WebSocket

from gateway import hydrate, live
from gateway.deps import CurrentUser, NotificationStub, PeopleDep, ip_rate_limit
from gateway.paging import PageParams, next_cursor
from gateway.schemas.common import Page
from gateway.schemas.notifications import (
    MarkReadIn,
    MarkReadOut,
    NotificationOut,
    UnreadCountOut,
)
from gateway.state import EdgeState
from zap.notification.v1 import notification_pb2

rest = APIRouter(
    prefix="/api/v1/notifications", tags=["notifications"], dependencies=[Depends(ip_rate_limit)]
)
# WebSockets admit themselves (token, limits and errors become close codes, not problems).
sockets = APIRouter(tags=["notifications"])


@rest.get("/", summary="Your notifications, most recent activity first")
async def list_notifications(
    user: CurrentUser,
    page: PageParams,
    notifications: NotificationStub,
    people: PeopleDep,
    unread_only: Annotated[bool, Query(description="Only those not read yet")] = False,
) -> Page[NotificationOut]:
    answer = await notifications.ListNotifications(
        notification_pb2.ListNotificationsRequest(page=page, unread_only=unread_only)
    )
    return Page(
        results=await hydrate.notifications(people, answer.notifications),
        next_cursor=next_cursor(answer.page),
    )


@rest.post("/read/", summary="Mark notifications read: by id, up to a cursor, or all")
async def mark_read(
    body: MarkReadIn, user: CurrentUser, notifications: NotificationStub
) -> MarkReadOut:
    answer = await notifications.MarkRead(
        notification_pb2.MarkReadRequest(
            notification_ids=body.ids or [], up_to_cursor=body.up_to_cursor or ""
        )
    )
    return MarkReadOut(marked=answer.marked, unread_count=answer.unread_count)


@rest.get("/unread-count/", summary="How many notifications are not read yet")
async def unread_count(user: CurrentUser, notifications: NotificationStub) -> UnreadCountOut:
    answer = await notifications.GetUnreadCount(notification_pb2.GetUnreadCountRequest())
    return UnreadCountOut(unread_count=answer.unread_count)


@sockets.websocket("/ws/notifications/")
async def notifications_socket(websocket: WebSocket) -> None:
    edge: EdgeState = websocket.app.state.edge
    await live.serve(websocket, edge)


router = APIRouter()
router.include_router(rest)
router.include_router(sockets)
