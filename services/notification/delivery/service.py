"""The deliver worker's rules: events in, notifications stored, the live channel told.

A batch of events (what one read of the stream brought) is written in one transaction that
first claims each event for its recipient (idempotency: delivery is at least once) and then
locks the recipients' sequence rows, so two batches that reach one recipient never race on a
group and cursors commit in order. A notification touched several times in one batch (two
likes on one post) is written, and published, once, in its final state, taking one cursor:
each recipient's cursors stay dense. The live messages are published only after the commit,
in one round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.notification.delivery.exclusions import Exclusions
from services.notification.delivery.repository import ActorMark, ActorRef, DeliveryRepository
from services.notification.delivery.rules import Intent, intents, most_recent_actors
from services.notification.inbox.converters import notification_to_proto
from services.notification.live.channel import Announcement
from services.notification.models import Notification
from services.notification.resources import NotificationResources
from zap.events.v1 import events_pb2
from zapcore.db import after_commit
from zapcore.exclusions import ExclusionsCache
from zapcore.ids import new_id
from zapcore.logging import get_logger

log = get_logger(__name__)

_LONG_AGO = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Pending:
    """One intent of one event, waiting to be delivered."""

    event_id: uuid.UUID
    intent: Intent
    acted_at: datetime | None = None


class Delivery:
    def __init__(self, resources: NotificationResources) -> None:
        self._r = resources
        self._exclusions = Exclusions(ExclusionsCache(resources.redis), resources.graph)

    async def handle(self, env: events_pb2.Envelope) -> None:
        """The event consumer's handler (FEED, GRAPH and MODERATION topics)."""
        await self.handle_batch([env])

    async def handle_batch(self, envs: Sequence[events_pb2.Envelope]) -> None:
        """Several events at once (the consumer's batch handler): blocks first, then every
        notification the others ask for, in one transaction."""
        pending: list[Pending] = []
        for env in envs:
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
                continue
            # Before any delivery of the batch: a like stored before its author was blocked
            # is taken out here, and one delivered after is refused (graph already knows).
            if blocked is not None:
                await self.forget_between(*blocked)
            acted_at = (
                env.occurred_at.ToDatetime(tzinfo=UTC) if env.HasField("occurred_at") else None
            )
            pending.extend(Pending(event_id, intent, acted_at) for intent in wanted)
        await self.deliver_many(pending)

    async def deliver(
        self, event_id: uuid.UUID, intent: Intent, acted_at: datetime | None = None
    ) -> Notification | None:
        """Store (or fold into a group) the notification an intent asks for; None when it
        asks for nothing: self-inflicted, from someone blocked or muted, or already done."""
        [stored] = await self.deliver_many([Pending(event_id, intent, acted_at)])
        return stored

    async def deliver_many(self, batch: Sequence[Pending]) -> list[Notification | None]:
        """`deliver` for several intents in one transaction; for each, the notification it
        ended up in (its state after the whole batch), or None."""
        results: list[Notification | None] = [None] * len(batch)
        wanted = [(i, p) for i, p in enumerate(batch) if not p.intent.self_inflicted]
        excluded = await self._exclusions.excluded(
            (p.intent.recipient_id, p.intent.actor_id)
            for _, p in wanted
            if p.intent.actor_id is not None
        )
        wanted = [
            (i, p)
            for i, p in wanted
            if p.intent.actor_id is None
            or (p.intent.recipient_id, p.intent.actor_id) not in excluded
        ]
        if not wanted:
            return results
        now = datetime.now(UTC)
        async with self._r.db.unit_of_work() as session:
            store = DeliveryRepository(session)
            claimed = await store.claim(
                [(p.event_id, p.intent.recipient_id) for _, p in wanted], now
            )
            todo: list[tuple[int, Pending]] = []
            for i, p in wanted:
                pair = (p.event_id, p.intent.recipient_id)
                if pair in claimed:
                    claimed.discard(pair)  # the same pair twice in a batch is delivered once
                    todo.append((i, p))
            if not todo:
                return results
            last = await store.lock_recipients(p.intent.recipient_id for _, p in todo)
            batch_writer = _BatchWriter(store, now, self._r.settings.group_window_seconds)
            await batch_writer.load([p.intent for _, p in todo])
            touched = {i: batch_writer.apply(p.intent, p.acted_at or now) for i, p in todo}
            announcements = batch_writer.number(last)
            if not announcements:
                return results
            await batch_writer.write(last)
            for i, notification in touched.items():
                results[i] = notification
            messages = [
                Announcement(n.recipient_id, n.cursor, notification_to_proto(n, self._r.cursors))
                for n in announcements
            ]

            async def announce() -> None:
                await self._r.live.publish_many(messages)

            after_commit(session, announce)
        return results

    async def forget_between(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
        """After a block, neither user's notifications show the other any more."""
        for recipient_id, actor_id in ((blocker_id, blocked_id), (blocked_id, blocker_id)):
            async with self._r.db.unit_of_work() as session:
                store = DeliveryRepository(session)
                await store.lock_recipient(recipient_id)
                await store.take_actor_out(recipient_id, actor_id)


class _BatchWriter:
    """The notifications of one batch, worked out in memory from what the database holds,
    then written at once. Intents are applied in the batch's order, each seeing the ones
    before it (a like that opens a group, then another that joins it)."""

    def __init__(self, store: DeliveryRepository, now: datetime, window_seconds: int) -> None:
        self._store = store
        self._now = now
        self._since = now - timedelta(seconds=window_seconds)
        self._groups: dict[tuple[uuid.UUID, str], Notification] = {}
        self._marks: dict[ActorRef, ActorMark] = {}
        self._existing: set[uuid.UUID] = set()
        # Touched notifications, in the order of their last change (dicts keep order).
        self._touched: dict[uuid.UUID, Notification] = {}
        self._new_marks: dict[ActorRef, ActorMark] = {}

    async def load(self, batch: Sequence[Intent]) -> None:
        """The open groups the intents may join and what is known of their actors."""
        grouped = [i for i in batch if i.grouped]
        self._groups = await self._store.open_groups(
            ((i.recipient_id, i.group_key) for i in grouped), self._since
        )
        self._existing = {n.id for n in self._groups.values()}
        refs: list[ActorRef] = [
            (i.recipient_id, i.group_key, i.actor_id) for i in grouped if i.actor_id is not None
        ]
        refs.extend(
            (group.recipient_id, group.group_key, shown)
            for group in self._groups.values()
            for shown in group.actor_ids
        )
        self._marks = await self._store.marks(refs)

    def apply(self, intent: Intent, acted_at: datetime) -> Notification | None:
        recipient, key, actor = intent.recipient_id, intent.group_key, intent.actor_id
        counted_in = None
        if intent.grouped and actor is not None:
            known = self._marks.get((recipient, key, actor))
            counted_in = known.notification_id if known is not None else None
            if counted_in is not None and intent.once_per_actor:
                return None
        group = self._groups.get((recipient, key)) if intent.grouped else None
        now = self._now
        if group is None:
            notification = Notification(
                id=new_id(),
                recipient_id=recipient,
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
                cursor=0,  # numbered once the batch is worked out
            )
            if intent.grouped:
                self._groups[(recipient, key)] = notification
        else:
            notification = group
            if actor is not None:
                times: dict[uuid.UUID, datetime] = {}
                for shown in group.actor_ids:
                    mark = self._marks.get((recipient, key, shown))
                    times[shown] = mark.acted_at if mark is not None else _LONG_AGO  # expired
                times[actor] = max(times.get(actor, acted_at), acted_at)
                group.actor_ids = most_recent_actors(times)
                if counted_in != group.id:
                    group.actor_count += 1
                if intent.comment_id and group.actor_ids[0] == actor:
                    group.comment_id = intent.comment_id  # the latest comment
            group.updated_at = now
            # New activity makes the group news again, and moves it to the end of the sequence.
            group.read_at = None
        # Every actor is recorded against the notification they appear in: blocks and account
        # deletions find them there. Ungrouped kinds get a key of their own.
        if actor is not None:
            mark_key = key or f"{intent.kind.value}:{notification.id}"
            ref = (recipient, mark_key, actor)
            before = self._marks.get(ref)
            mark = ActorMark(
                recipient,
                mark_key,
                actor,
                notification.id,
                acted_at if before is None else max(before.acted_at, acted_at),
            )
            self._marks[ref] = self._new_marks[ref] = mark
        self._touched.pop(notification.id, None)
        self._touched[notification.id] = notification
        return notification

    def number(self, last: dict[uuid.UUID, int]) -> list[Notification]:
        """Give each touched notification the next cursor of its recipient, in the order of
        their last change (moving `last` along); the notifications to announce, in order."""
        for notification in self._touched.values():
            last[notification.recipient_id] += 1
            notification.cursor = last[notification.recipient_id]
        return list(self._touched.values())

    async def write(self, last: dict[uuid.UUID, int]) -> None:
        touched = list(self._touched.values())
        moved = {n.recipient_id: last[n.recipient_id] for n in touched}
        await self._store.write(
            new=[n for n in touched if n.id not in self._existing],
            changed=[n for n in touched if n.id in self._existing],
            marks=list(self._new_marks.values()),
            last_cursors=moved,
            now=self._now,
        )
