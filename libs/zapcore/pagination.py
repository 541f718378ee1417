"""Cursor pagination: opaque, signed cursors and the shared limit rule (1..100, default 20)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from zapcore.errors import InvalidArgument
from zapcore.identity import derive_key

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_SIGNATURE_BYTES = 16
_MAX_CURSOR_CHARS = 1024


def page_limit(limit: int) -> int:
    """The effective page size for a request's limit (0 means the default)."""
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(
            f"limit must be between 1 and {MAX_LIMIT}",
            fields={"limit": f"must be between 1 and {MAX_LIMIT}"},
        )
    return limit


def invalid_cursor() -> InvalidArgument:
    """The one error for a cursor this list did not issue (forged, edited, another list's)."""
    return InvalidArgument(
        "cursor is not valid for this list",
        reason="invalid-cursor",
        fields={"cursor": "not a cursor issued for this list"},
    )


def expired_cursor() -> InvalidArgument:
    """A genuine cursor whose page sequence no longer exists: start from the first page."""
    return InvalidArgument(
        "this cursor has expired; start again from the first page",
        reason="cursor-expired",
        fields={"cursor": "expired"},
    )


class CursorCodec:
    """Encodes keyset positions as opaque cursors that clients cannot forge or edit."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = derive_key(secret, f"cursor:{purpose}")

    def encode(self, position: dict[str, Any]) -> str:
        payload = orjson.dumps(position)
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(signature + payload).rstrip(b"=").decode()

    def decode(self, cursor: str) -> dict[str, Any]:
        """The position inside a cursor; InvalidArgument for anything not issued here."""
        invalid = invalid_cursor()
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise invalid
        position = orjson.loads(payload)
        if not isinstance(position, dict):
            raise invalid
        return position
