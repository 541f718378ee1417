"""Issued tokens -> protobuf messages (pure)."""

from __future__ import annotations

from services.auth.tokens.service import IssuedTokens
from zap.auth.v1 import auth_pb2
from zapcore.timestamps import to_timestamp


def tokens_to_proto(tokens: IssuedTokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access=tokens.access,
        refresh=tokens.refresh,
        access_expires_at=to_timestamp(tokens.access_expires_at),
        refresh_expires_at=to_timestamp(tokens.refresh_expires_at),
    )
