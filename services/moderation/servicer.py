"""ModerationService over gRPC. Tier 1 (CheckText) is served here; the ML tier, the review
queue and reports arrive with their own modules (RPCs not listed answer UNIMPLEMENTED)."""

from __future__ import annotations

from typing import Any

from services.moderation.tier1.rules import RuleSet
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.errors import InvalidArgument

Context = Any
# Far beyond any post or comment; keeps a hostile caller from making the check slow.
MAX_TEXT_CHARS = 20_000


class ModerationServicer(moderation_pb2_grpc.ModerationServiceServicer):
    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules

    async def CheckText(
        self, request: moderation_pb2.CheckTextRequest, context: Context
    ) -> moderation_pb2.CheckTextResponse:
        if len(request.text) > MAX_TEXT_CHARS:
            raise InvalidArgument(
                f"text is longer than {MAX_TEXT_CHARS} characters",
                fields={"text": f"at most {MAX_TEXT_CHARS} characters"},
            )
        verdict = self._rules.check(request.text)
        return moderation_pb2.CheckTextResponse(
            verdict=moderation_pb2.VERDICT_REJECT
            if verdict.reject
            else moderation_pb2.VERDICT_ALLOW,
            score=verdict.score,
            reasons=list(verdict.reasons),
        )
