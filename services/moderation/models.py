"""moderation's tables."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from zapcore.db import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
