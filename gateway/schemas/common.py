"""Shapes shared by many routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from fastapi import Path
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

# Ids in paths are UUIDs. The service checks the format (400 `invalid-id`, not 422), so the
# schema documents it for clients and fuzzers without the gateway parsing it twice.
ObjectIdPath = Path(min_length=1, max_length=64, json_schema_extra={"format": "uuid"})


class StrictBody(BaseModel):
    """Request bodies refuse unknown fields, so nobody can slip in `role` or `is_staff`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Page(BaseModel, Generic[T]):
    results: list[T]
    next_cursor: str | None


def when(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)
