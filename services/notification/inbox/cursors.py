"""The two cursors of notification, opaque and signed.

A position ("c") is a point in one recipient's change sequence: Subscribe resumes after it,
MarkRead marks everything up to it, and every notification carries its own. A page cursor
("b") continues a newest-first list. Each has its own key, so neither passes as the other.
"""

from __future__ import annotations

import functools

from zapcore.errors import InvalidArgument
from zapcore.pagination import CursorCodec

_REMEMBERED_POSITIONS = 4096


class Cursors:
    def __init__(self, secret: str) -> None:
        self._positions = CursorCodec(secret, "notification.position")
        self._pages = CursorCodec(secret, "notification.page")
        # A position's cursor depends on the number alone, and every recipient's sequence
        # starts at 1: heartbeats and deliveries mostly sign numbers signed before.
        self.position = functools.lru_cache(maxsize=_REMEMBERED_POSITIONS)(self._position)

    def _position(self, cursor: int) -> str:
        return self._positions.encode({"c": cursor})

    def parse_position(self, text: str, field: str = "cursor") -> int:
        return _number(self._positions.decode(text).get("c"), field)

    def page(self, before: int) -> str:
        return self._pages.encode({"b": before})

    def parse_page(self, text: str) -> int:
        return _number(self._pages.decode(text).get("b"), "cursor")


def _number(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(
            "cursor is not valid", reason="invalid-cursor", fields={field: "not a valid cursor"}
        )
    return value
