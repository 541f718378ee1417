"""The deliver worker's rules: events in, notifications stored, the live channel told.

Each recipient's notification is written in one transaction that first claims the event for
that recipient (idempotency: delivery is at least once) and then locks the recipient's
sequence row, so two deliveries to one recipient never race on a group and cursors commit in
order. The live message is published only after the commit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.notification.delivery.repository import ActorMark, DeliveryRepository
from services.notification.delivery.rules import Intent, intents, most_recent_actors
from services.notification.inbox.converters import notification_to_proto
from services.notification.models import Notification
from services.notification.resources import NotificationResources
from zap.events.v1 import events_pb2
from zap.graph.v1 import graph_pb2
from zapcore.db import after_commit
from zapcore.ids import new_id
from zapcore.logging import get_logger

log = get_logger(__name__)

_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class Delivery:
    def __init__(self, resources: NotificationResources) -> None:
        self._r = resources

    async def handle(self, env: events_pb2.Envelope) -> None:
        """The event consumer's handler (FEED, GRAPH and MODERATION topics)."""
        try:
            event_id = uuid.UUID(env.id)
            wanted = intents(env)
            blocked = (
                (uuid.UUID(env.blocked.blocker_id), uuid.UUID(env.blocked.blocked_id))
                if env.WhichOneof("payload") == "blocked"
                else None
            )
        except ValueError:
            # Retrying cannot fix a malformed event; it is dropped, loudly.
            log.error("notification.malformed_event", event_id=env.id, producer=env.producer)
            return
        if blocked is not None:
            await self.forget_between(*blocked)
        acted_at = env.occurred_at.ToDatetime(tzinfo=UTC) if env.HasField("occurred_at") else None
        for intent in wanted:
            await self.deliver(event_id, intent, acted_at)

    async def deliver(
        self, event_id: uuid.UUID, intent: Intent, acted_at: datetime | None = None
    ) -> Notification | None:
        """Store (or fold into a group) the notification an intent asks for; None when it
        asks for nothing: self-inflicted, from someone blocked or muted, or already done."""
        if intent.self_inflicted:
            return None
        if intent.actor_id is not None and await self._excluded(
            intent.recipient_id, intent.actor_id
        ):
            return None
        now = datetime.now(UTC)
        async with self._r.db.unit_of_work() as session:
            store = DeliveryRepository(session)
            last = await store.claim_and_lock(event_id, intent.recipient_id, now)
            if last is None:
                return None
            notification = await self._write(store, intent, now, acted_at or now, last + 1)
            if notification is None:
                return None
            message = notification_to_proto(notification, self._r.cursors)
            recipient, cursor = intent.recipient_id, notification.cursor

            async def announce() -> None:
                await self._r.live.publish(recipient, cursor, message)

            after_commit(session, announce)
        return notification

    async def _write(
        self,
        store: DeliveryRepository,
        intent: Intent,
        now: datetime,
        acted_at: datetime,
        cursor: int,
    ) -> Notification | None:
        key, actor = intent.group_key, intent.actor_id
        counted_in = None
        if intent.grouped and actor is not None:
            counted_in = await store.counted_in(intent.recipient_id, key, actor)
            if counted_in is not None and intent.once_per_actor:
                return None
        group = None
        if intent.grouped:
            since = now - timedelta(seconds=self._r.settings.group_window_seconds)
            group = await store.open_group(intent.recipient_id, key, since)
        if group is None:
            notification = Notification(
                id=new_id(),
                recipient_id=intent.recipient_id,
                kind=intent.kind.value,
                group_key=key,
                actor_ids=[actor] if actor else [],
                actor_count=1 if actor else 0,
                post_id=intent.post_id,
                comment_id=intent.comment_id,
                action=intent.action,
                reason=intent.reason,
                read_at=None,
                created_at=now,
                updated_at=now,
                cursor=cursor,
            )
        else:
            notification = group
            if actor is not None:
                times = await store.acted_at(intent.recipient_id, key, group.actor_ids)
                for shown in group.actor_ids:
                    times.setdefault(shown, _LONG_AGO)  # its bookkeeping expired
                times[actor] = max(times.get(actor, acted_at), acted_at)
                group.actor_ids = most_recent_actors(times)
                if counted_in != group.id:
                    group.actor_count += 1
                if intent.comment_id and group.actor_ids[0] == actor:
                    group.comment_id = intent.comment_id  # the latest comment
            group.updated_at = now
            # New activity makes the group news again, and moves it to the end of the sequence.
            group.read_at = None
            group.cursor = cursor
        # Every actor is recorded against the notification they appear in: blocks and account
        # deletions find them there. Ungrouped kinds get a key of their own.
        mark = (
            ActorMark(key or f"{intent.kind.value}:{notification.id}", actor, acted_at)
            if actor is not None
            else None
        )
        await store.write(notification, new=group is None, actor=mark)
        return notification

    async def _excluded(self, recipient_id: uuid.UUID, actor_id: uuid.UUID) -> bool:
        """Nothing reaches a recipient from someone they block, who blocks them, or they mute."""
        answer = await self._r.graph.GetRelationships(
            graph_pb2.GetRelationshipsRequest(viewer_id=str(recipient_id), user_ids=[str(actor_id)])
        )
        relationship = answer.relationships[0]
        return relationship.blocking or relationship.blocked_by or relationship.muting

    async def forget_between(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        """After a block, neither user's notifications show the other any more."""
        for recipient_id, actor_id in ((blocker_id, blocked_id), (blocked_id, blocker_id)):
            async with self._r.db.unit_of_work() as session:
                store = DeliveryRepository(session)
                await store.lock_recipient(recipient_id)
                await store.take_actor_out(recipient_id, actor_id)
