"""Errors about media records that every part of the service raises the same way."""

from __future__ import annotations

from zapcore.errors import NotFound


def media_not_found() -> NotFound:
    """Unknown, and someone else's when it may not be seen: existence is not leaked."""
    return NotFound("media not found", reason="media-not-found")
