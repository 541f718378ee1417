"""The recipient's side: their notifications, newest first, and what they have read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.notification.inbox.repository import InboxRepository
from services.notification.models import Notification
from services.notification.resources import NotificationResources
from zapcore.errors import InvalidArgument
from zapcore.ids import parse_ids
from zapcore.pagination import page_limit

MAX_IDS = 100


@dataclass(frozen=True)
class Page:
    items: Sequence[Notification]
    next_cursor: str


@dataclass(frozen=True)
class Marked:
    marked: int
    unread_count: int


class Inbox:
    def __init__(self, resources: NotificationResources) -> None:
        self._r = resources

    async def page(self, user_id: uuid.UUID, cursor: str, limit: int, *, unread_only: bool) -> Page:
        size = page_limit(limit)
        before = self._r.cursors.parse_page(cursor) if cursor else None
        async with self._r.db.read_only() as session:
            rows = await InboxRepository(session).page(
                user_id, before, size + 1, unread_only=unread_only
            )
        items = rows[:size]
        more = len(rows) > size
        return Page(items, self._r.cursors.page(items[-1].cursor) if more else "")

    async def mark_read(self, user_id: uuid.UUID, ids: Sequence[str], up_to_cursor: str) -> Marked:
        """These notifications, or when none are named every one up to and including the
        cursor, or when neither is given all of them."""
        if len(ids) > MAX_IDS:
            raise InvalidArgument(
                f"at most {MAX_IDS} ids at once",
                fields={"notification_ids": f"at most {MAX_IDS}"},
            )
        wanted = parse_ids(list(ids), "notification_ids") if ids else None
        up_to = (
            self._r.cursors.parse_position(up_to_cursor, "up_to_cursor")
            if up_to_cursor and wanted is None
            else None
        )
        async with self._r.db.unit_of_work() as session:
            store = InboxRepository(session)
            marked = await store.mark_read(user_id, datetime.now(UTC), ids=wanted, up_to=up_to)
            unread = await store.unread_count(user_id)
        return Marked(marked, unread)

    async def unread_count(self, user_id: uuid.UUID) -> int:
        async with self._r.db.read_only() as session:
            return await InboxRepository(session).unread_count(user_id)

    async def export(self, user_id: uuid.UUID) -> Sequence[Notification]:
        async with self._r.db.read_only() as session:
            return await InboxRepository(session).page(
                user_id, None, self._r.settings.export_limit, unread_only=False
            )
