"""Content kinds and actions between protobuf enums and stored names."""

from __future__ import annotations

from zap.common.v1 import common_pb2
from zap.moderation.v1 import moderation_pb2
from zapcore.errors import InvalidArgument

KIND_NAMES = {
    moderation_pb2.CONTENT_KIND_POST: "post",
    moderation_pb2.CONTENT_KIND_COMMENT: "comment",
}
KIND_VALUES = {name: value for value, name in KIND_NAMES.items()}

ACTION_NAMES = {
    moderation_pb2.ACTION_APPROVE: "approve",
    moderation_pb2.ACTION_REMOVE: "remove",
    moderation_pb2.ACTION_SHADOW_BAN: "shadow_ban",
}
ACTION_VALUES = {name: value for value, name in ACTION_NAMES.items()}

VISIBILITY_OF_ACTION = {
    "approve": common_pb2.VISIBILITY_VISIBLE,
    "remove": common_pb2.VISIBILITY_REMOVED,
    "shadow_ban": common_pb2.VISIBILITY_SHADOW_BANNED,
}


def kind_name(value: int, field: str = "content_kind") -> str:
    try:
        return KIND_NAMES[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            "content_kind must be post or comment", fields={field: "post or comment"}
        ) from None


def action_name(value: int) -> str:
    try:
        return ACTION_NAMES[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            "action must be approve, remove or shadow_ban", fields={"action": "required"}
        ) from None
