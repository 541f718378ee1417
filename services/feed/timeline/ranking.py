"""The ranking of SPEC §4, in one place, for Python and for SQL.

score = (likes*1.0 + comments*2.5 + shares*3.0 + 1) / (age_hours + 2) ** 1.8
        * affinity(viewer, author) * (1 - moderation_score)
"""

from __future__ import annotations

from datetime import datetime

GRAVITY = 1.8
LIKE_WEIGHT = 1.0
COMMENT_WEIGHT = 2.5
SHARE_WEIGHT = 3.0

# Affinity: 1 for a stranger, growing with the viewer's likes and comments on the author,
# bounded so that no relationship drowns everything else.
AFFINITY_PER_LIKE = 0.05
AFFINITY_PER_COMMENT = 0.15
AFFINITY_MAX = 2.0


def engagement_score(
    likes: int, comments: int, shares: int, created_at: datetime, now: datetime
) -> float:
    age_hours = max(0.0, (now - created_at).total_seconds() / 3600)
    points = likes * LIKE_WEIGHT + comments * COMMENT_WEIGHT + shares * SHARE_WEIGHT + 1
    return float(points / (age_hours + 2) ** GRAVITY)


def affinity(likes: int, comments: int) -> float:
    return min(AFFINITY_MAX, 1.0 + likes * AFFINITY_PER_LIKE + comments * AFFINITY_PER_COMMENT)


def trust_factor(moderation_score: float | None) -> float:
    return 1.0 - min(1.0, max(0.0, moderation_score or 0.0))


def score(
    *,
    likes: int,
    comments: int,
    shares: int,
    created_at: datetime,
    now: datetime,
    affinity_value: float,
    moderation_score: float | None,
) -> float:
    return (
        engagement_score(likes, comments, shares, created_at, now)
        * affinity_value
        * trust_factor(moderation_score)
    )


# The same formulas in SQL, over `p` (posts) and `i` (interactions, may be NULL).
SQL_AFFINITY = (
    f"LEAST({AFFINITY_MAX}, 1.0 + COALESCE(i.likes, 0) * {AFFINITY_PER_LIKE}"
    f" + COALESCE(i.comments, 0) * {AFFINITY_PER_COMMENT})"
)
SQL_SCORE_WITHOUT_AFFINITY = (
    f"(p.like_count * {LIKE_WEIGHT} + p.comment_count * {COMMENT_WEIGHT}"
    f" + p.share_count * {SHARE_WEIGHT} + 1)"
    f" / power(GREATEST(0, EXTRACT(EPOCH FROM (:now - p.created_at)) / 3600.0) + 2, {GRAVITY})"
    " * (1 - LEAST(1, GREATEST(0, COALESCE(p.moderation_score, 0))))"
)
