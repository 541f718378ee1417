"""Tier 3: user reports, the review queue, moderators' decisions and authors' appeals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.moderation.kinds import VISIBILITY_OF_ACTION
from services.moderation.models import (
    Appeal,
    Decision,
    ItemSource,
    ItemStatus,
    QueueItem,
    Report,
)
from services.moderation.repository import ModerationRepository
from services.moderation.resources import ModerationResources
from zap.events.v1 import events_pb2
from zap.feed.v1 import feed_pb2
from zapcore.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from zapcore.events import MODERATION
from zapcore.identity import acting_as_service
from zapcore.logging import get_logger
from zapcore.pagination import invalid_cursor

log = get_logger(__name__)

_FEED_KIND = {"post": feed_pb2.CONTENT_KIND_POST, "comment": feed_pb2.CONTENT_KIND_COMMENT}
_EVENT_KIND = {"post": events_pb2.CONTENT_KIND_POST, "comment": events_pb2.CONTENT_KIND_COMMENT}
MAX_NOTE = 2000
# The source id of a human's decision in feed is this prefix and the decision's id; feed lets
# no automatic score (source "score:...") override it.
HUMAN_DECISION_SOURCE = "decision:"


@dataclass(frozen=True)
class ReportForm:
    reporter_id: uuid.UUID
    kind: str
    content_id: uuid.UUID
    author_id: uuid.UUID | None
    reason: int
    note: str
    text: str


class Review:
    def __init__(self, resources: ModerationResources) -> None:
        self._r = resources

    async def report(self, form: ReportForm) -> uuid.UUID:
        """Record a report (once per user and content) and queue the content for humans.
        The report's id; a repeat answers with the first report's and changes nothing."""
        if form.author_id == form.reporter_id:
            raise InvalidArgument("you cannot report your own content", reason="cannot-report-self")
        if len(form.note) > MAX_NOTE:
            raise InvalidArgument(f"note is longer than {MAX_NOTE}", fields={"note": "too long"})
        report = Report(
            id=uuid.uuid4(),
            reporter_id=form.reporter_id,
            content_kind=form.kind,
            content_id=form.content_id,
            author_id=form.author_id,
            reason=form.reason,
            note=form.note,
        )
        async with self._r.db.unit_of_work() as session:
            repository = ModerationRepository(session)
            stored = await repository.add_report(report)
            if stored == report.id:
                item = await repository.enqueue(
                    QueueItem(
                        content_kind=form.kind,
                        content_id=form.content_id,
                        author_id=form.author_id,
                        source=ItemSource.REPORTS,
                        text=form.text[:20_000],
                    )
                )
                count = await repository.count_reports(form.kind, form.content_id)
                await repository.set_reports(item.id, count, count >= self._r.settings.escalate_at)
        return stored

    async def queue(
        self, statuses: list[str], source: str | None, kind: str | None, cursor: str, limit: int
    ) -> tuple[list[QueueItem], str]:
        after = None
        if cursor:
            position = self._r.cursors.decode(cursor)
            if position.get("k") != "queue":
                raise invalid_cursor()
            after = (
                bool(position["e"]),
                datetime.fromisoformat(position["t"]),
                uuid.UUID(position["i"]),
            )
        async with self._r.db.read_only() as session:
            items = list(
                await ModerationRepository(session).queue(statuses, source, kind, after, limit + 1)
            )
        if len(items) <= limit:
            return items, ""
        last = items[limit - 1]
        next_cursor = self._r.cursors.encode(
            {"k": "queue", "e": last.escalated, "t": last.created_at.isoformat(), "i": str(last.id)}
        )
        return items[:limit], next_cursor

    async def claim(self, moderator_id: uuid.UUID, item_id: uuid.UUID) -> QueueItem:
        async with self._r.db.unit_of_work() as session:
            # Locked: of two moderators claiming at once, the second sees the first's claim.
            item = await self._undecided(ModerationRepository(session), item_id, lock=True)
            now = datetime.now(UTC)
            self._check_claim(item, moderator_id, now)
            item.status, item.claimed_by, item.claimed_at = ItemStatus.CLAIMED, moderator_id, now
            await session.flush()
        return item

    async def decide(
        self, moderator_id: uuid.UUID, item_id: uuid.UUID, action: str, note: str
    ) -> Decision:
        """Apply the decision in feed, then log it, with the item locked throughout: of two
        moderators deciding at once, the second waits for the first, then finds the item
        decided (already-decided) and has changed nothing. A failure in feed leaves the item
        open; feed lets no later automatic score override the decision."""
        if len(note) > MAX_NOTE:
            raise InvalidArgument(f"note is longer than {MAX_NOTE}", fields={"note": "too long"})
        decision_id = uuid.uuid4()
        async with self._r.db.unit_of_work() as session:
            repository = ModerationRepository(session)
            item = await self._undecided(repository, item_id, lock=True)
            self._check_claim(item, moderator_id, datetime.now(UTC))
            with acting_as_service():
                await self._r.feed.SetModerationState(
                    feed_pb2.SetModerationStateRequest(
                        content_kind=_FEED_KIND[item.content_kind],
                        content_id=str(item.content_id),
                        visibility=VISIBILITY_OF_ACTION[action],
                        # Feed knows a human's decision by this prefix (and lets it stand).
                        source_id=f"{HUMAN_DECISION_SOURCE}{decision_id}",
                    )
                )
            decision = await repository.add_decision(
                Decision(
                    id=decision_id,
                    item_id=item.id,
                    content_kind=item.content_kind,
                    content_id=item.content_id,
                    author_id=item.author_id,
                    action=action,
                    moderator_id=moderator_id,
                    note=note,
                    model=item.model,
                    score=item.score,
                    automatic=False,
                )
            )
            item.status = ItemStatus.DECIDED
            reporters = await repository.reporters(item.content_kind, item.content_id)
            event = events_pb2.ModerationDecided(
                decision_id=str(decision.id),
                content_kind=_EVENT_KIND[item.content_kind],
                content_id=str(item.content_id),
                author_id=str(item.author_id or ""),
                action=action,
                reason=note,
                reporter_ids=[str(r) for r in reporters],
            )
            await self._r.outbox.stage(session, MODERATION, event)
        return decision

    async def appeal(self, author_id: uuid.UUID, decision_id: uuid.UUID, text: str) -> QueueItem:
        if len(text) > MAX_NOTE:
            raise InvalidArgument(f"text is longer than {MAX_NOTE}", fields={"text": "too long"})
        async with self._r.db.unit_of_work() as session:
            repository = ModerationRepository(session)
            decision = await repository.decision(decision_id)
            if decision is None or decision.author_id != author_id:
                raise NotFound("decision not found", reason="decision-not-found")
            if decision.action == "approve":
                raise FailedPrecondition("nothing to appeal: the content was approved")
            item = await repository.enqueue(
                QueueItem(
                    content_kind=decision.content_kind,
                    content_id=decision.content_id,
                    author_id=author_id,
                    source=ItemSource.APPEAL,
                    text=text,
                )
            )
            appealed = await repository.add_appeal(
                Appeal(decision_id=decision_id, author_id=author_id, text=text, item_id=item.id)
            )
            if not appealed:
                raise AlreadyExists("this decision was already appealed", reason="already-appealed")
        return item

    async def _undecided(
        self, repository: ModerationRepository, item_id: uuid.UUID, *, lock: bool = False
    ) -> QueueItem:
        item = await repository.item(item_id, lock=lock)
        if item is None:
            raise NotFound("queue item not found", reason="item-not-found")
        if item.status == ItemStatus.DECIDED:
            raise FailedPrecondition("this item was already decided", reason="already-decided")
        return item

    def _check_claim(self, item: QueueItem, moderator_id: uuid.UUID, now: datetime) -> None:
        lapse = timedelta(minutes=self._r.settings.claim_minutes)
        held = item.claimed_by is not None and item.claimed_at is not None
        if held and item.claimed_by != moderator_id and now - item.claimed_at < lapse:  # type: ignore[operator]
            raise PermissionDenied(
                "another moderator is working on this item", reason="claimed-by-another"
            )
