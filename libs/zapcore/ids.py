"""Identifiers: every primary key is a time-ordered UUIDv7 (index-friendly, not guessable)."""

from __future__ import annotations

import uuid

from uuid_utils import compat

from zapcore.errors import InvalidArgument


def new_id() -> uuid.UUID:
    """A new UUIDv7 as a standard-library UUID."""
    return compat.uuid7()


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """Parse a UUID from a request, or raise InvalidArgument naming the field."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument(
            f"{field} is not a valid id", fields={field: "must be a UUID"}
        ) from None


def parse_ids(values: list[str] | tuple[str, ...], field: str = "ids") -> list[uuid.UUID]:
    """Parse many UUIDs, failing on the first bad one."""
    return [parse_id(value, field) for value in values]
