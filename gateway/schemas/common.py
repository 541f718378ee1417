"""Shapes shared by many routes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Ids in paths are UUIDs. The service checks the format (400 `invalid-id`, not 422), so the
# schema documents it for clients and fuzzers without the gateway parsing it twice.
ObjectIdPath = Path(min_length=1, max_length=64, json_schema_extra={"format": "uuid"})


# Control characters other than tab and line breaks (NUL first: PostgreSQL cannot store it
# in text), DEL, the C1 controls, and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def storable_text(value: str) -> str:
    """The one check of text at the edge: no character that is not text anyone stores.

    Every string of every request body (`StrictBody`) and every free-text query parameter
    (`Text`) goes through it, so bad bytes are a 422 here, not a database error upstream.
    """
    found = _UNSTORABLE.search(value)
    if found is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters (U+{code} at position {position})",
            {"code": f"{ord(found.group()):04X}", "position": found.start()},
        )
    return value


def _storable(value: Any) -> None:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _storable(item)


# A string query parameter or body field, checked with `storable_text`.
Text = Annotated[str, AfterValidator(storable_text)]


class StrictBody(BaseModel):
    """Request bodies refuse unknown fields, so nobody can slip in `role` or `is_staff`,
    and refuse control characters in any string they hold (see `storable_text`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _only_storable_text(cls, value: Any) -> Any:
        _storable(value)
        return value


class Page(BaseModel, Generic[T]):
    results: list[T]
    next_cursor: str | None


def when(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)
