"""Keyset positions of follower lists, inside signed cursors (pure, no I/O).

A cursor holds the list owner and the last edge of a page, (followed_at, user id): the next
page is every edge strictly older in that order, so pages neither skip nor repeat edges
while new follows arrive at the top of the list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.graph.follows.repository import Edge
from zapcore.pagination import CursorCodec, invalid_cursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode(codec: CursorCodec, owner: uuid.UUID, last: Edge) -> str:
    # Microseconds as an integer: PostgreSQL's precision, with no float rounding.
    return codec.encode(
        {
            "o": str(owner),
            "t": (last.followed_at - _EPOCH) // _MICROSECOND,
            "u": str(last.user_id),
        }
    )


def decode(codec: CursorCodec, owner: uuid.UUID, cursor: str) -> Edge | None:
    """The position after which the next page starts; None for the first page."""
    if not cursor:
        return None
    position = codec.decode(cursor)
    try:
        if position["o"] != str(owner) or not isinstance(position["t"], int):
            raise ValueError("a cursor of another list")
        return Edge(
            user_id=uuid.UUID(position["u"]),
            followed_at=_EPOCH + position["t"] * _MICROSECOND,
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        # Signed by us, yet not for this list (another user's followers, an older format).
        raise invalid_cursor() from None
