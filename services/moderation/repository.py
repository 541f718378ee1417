"""SQL for scores, the review queue, reports, decisions and appeals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.moderation.models import (
    Appeal,
    Decision,
    ItemStatus,
    QueueItem,
    Report,
    Score,
)


class ModerationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add_score(self, score: Score) -> bool:
        """False when this version of the content was already scored."""
        values = {
            c.key: getattr(score, c.key) for c in Score.__table__.columns if c.key != "scored_at"
        }
        inserted = await self._s.execute(
            insert(Score).values(values).on_conflict_do_nothing().returning(Score.content_id)
        )
        return inserted.first() is not None

    async def open_item(self, kind: str, content_id: uuid.UUID) -> QueueItem | None:
        result = await self._s.execute(
            select(QueueItem)
            .where(
                QueueItem.content_kind == kind,
                QueueItem.content_id == content_id,
                QueueItem.status != ItemStatus.DECIDED,
            )
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def enqueue(self, item: QueueItem) -> QueueItem:
        """The open item of this content, created from `item` when there is none."""
        values = {
            c.key: getattr(item, c.key)
            for c in QueueItem.__table__.columns
            if getattr(item, c.key) is not None and c.key != "created_at"
        }
        await self._s.execute(
            insert(QueueItem)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=["content_kind", "content_id"],
                index_where=text("status <> 'decided'"),
            )
        )
        found = await self.open_item(item.content_kind, item.content_id)
        assert found is not None
        return found

    async def add_report(self, report: Report) -> uuid.UUID:
        """The id of this user's report of this content: `report`'s when it is new (and
        added), the earlier report's when there is one (and nothing changes)."""
        values = {
            c.key: getattr(report, c.key) for c in Report.__table__.columns if c.key != "created_at"
        }
        inserted = await self._s.execute(
            insert(Report).values(values).on_conflict_do_nothing().returning(Report.id)
        )
        if inserted.first() is not None:
            return report.id
        earlier = await self._s.execute(
            select(Report.id).where(
                Report.reporter_id == report.reporter_id,
                Report.content_kind == report.content_kind,
                Report.content_id == report.content_id,
            )
        )
        return earlier.scalar_one()

    async def reporters(self, kind: str, content_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._s.execute(
            select(Report.reporter_id).where(
                Report.content_kind == kind,
                Report.content_id == content_id,
                Report.reporter_id.is_not(None),
            )
        )
        return [r for r in rows.scalars() if r is not None]

    async def item(self, item_id: uuid.UUID, *, lock: bool = False) -> QueueItem | None:
        query = select(QueueItem).where(QueueItem.id == item_id)
        if lock:
            query = query.with_for_update()
        return (await self._s.execute(query)).scalar_one_or_none()

    async def queue(
        self,
        statuses: Sequence[str],
        source: str | None,
        kind: str | None,
        after: tuple[bool, datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[QueueItem]:
        """Escalated first, then oldest first."""
        query = select(QueueItem).where(QueueItem.status.in_(statuses))
        if source:
            query = query.where(QueueItem.source == source)
        if kind:
            query = query.where(QueueItem.content_kind == kind)
        if after is not None:
            escalated, created_at, item_id = after
            # (escalated DESC, created_at, id) keyset, spelled out for the mixed directions.
            query = query.where(
                (QueueItem.escalated < escalated)
                | (
                    (QueueItem.escalated == escalated)
                    & (
                        (QueueItem.created_at > created_at)
                        | ((QueueItem.created_at == created_at) & (QueueItem.id > item_id))
                    )
                )
            )
        query = query.order_by(
            QueueItem.escalated.desc(), QueueItem.created_at, QueueItem.id
        ).limit(limit)
        return (await self._s.execute(query)).scalars().all()

    async def add_decision(self, decision: Decision) -> Decision:
        self._s.add(decision)
        await self._s.flush()
        return decision

    async def decision(self, decision_id: uuid.UUID) -> Decision | None:
        return await self._s.get(Decision, decision_id)

    async def decided_by_a_human(self, kind: str, content_id: uuid.UUID) -> bool:
        """Whether a moderator has decided this content (on any item, an appeal's included)."""
        found = await self._s.execute(
            select(Decision.id)
            .where(
                Decision.content_kind == kind,
                Decision.content_id == content_id,
                Decision.automatic.is_(False),
            )
            .limit(1)
        )
        return found.first() is not None

    async def decisions(self, kind: str, content_id: uuid.UUID, limit: int) -> Sequence[Decision]:
        rows = await self._s.execute(
            select(Decision)
            .where(Decision.content_kind == kind, Decision.content_id == content_id)
            .order_by(Decision.decided_at.desc())
            .limit(limit)
        )
        return rows.scalars().all()

    async def add_appeal(self, appeal: Appeal) -> bool:
        values = {
            c.key: getattr(appeal, c.key) for c in Appeal.__table__.columns if c.key != "created_at"
        }
        inserted = await self._s.execute(
            insert(Appeal).values(values).on_conflict_do_nothing().returning(Appeal.decision_id)
        )
        return inserted.first() is not None

    async def count_reports(self, kind: str, content_id: uuid.UUID) -> int:
        result = await self._s.execute(
            select(func.count()).where(Report.content_kind == kind, Report.content_id == content_id)
        )
        return int(result.scalar_one())

    async def set_reports(self, item_id: uuid.UUID, count: int, escalated: bool) -> None:
        await self._s.execute(
            update(QueueItem)
            .where(QueueItem.id == item_id)
            .values(report_count=count, escalated=escalated)
        )

    async def reports_by(self, user_id: uuid.UUID) -> Sequence[Report]:
        rows = await self._s.execute(
            select(Report).where(Report.reporter_id == user_id).order_by(Report.created_at)
        )
        return rows.scalars().all()

    async def decisions_about(self, user_id: uuid.UUID) -> Sequence[Decision]:
        rows = await self._s.execute(
            select(Decision).where(Decision.author_id == user_id).order_by(Decision.decided_at)
        )
        return rows.scalars().all()

    async def hold_author(self, author_id: uuid.UUID) -> None:
        """Until this transaction ends, no other one can record about this author or forget
        them: scoring and the deletion cascade take turns, so a score checked against a live
        account cannot land after the cascade has cleaned up."""
        await self._s.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:author, 0))"),
            {"author": str(author_id)},
        )

    async def forget_user(self, user_id: uuid.UUID) -> None:
        """Scores, reports and queue items that name the user go; the decision log stays,
        anonymised (its rows no longer say whose content it was)."""
        await self.hold_author(user_id)
        await self._s.execute(delete(Score).where(Score.author_id == user_id))
        await self._s.execute(
            delete(Report).where((Report.reporter_id == user_id) | (Report.author_id == user_id))
        )
        await self._s.execute(delete(QueueItem).where(QueueItem.author_id == user_id))
        await self._s.execute(delete(Appeal).where(Appeal.author_id == user_id))
        await self._s.execute(
            update(Decision).where(Decision.author_id == user_id).values(author_id=None)
        )
        await self._s.execute(
            update(Decision).where(Decision.moderator_id == user_id).values(moderator_id=None)
        )
        await self._s.execute(
            update(QueueItem).where(QueueItem.claimed_by == user_id).values(claimed_by=None)
        )
