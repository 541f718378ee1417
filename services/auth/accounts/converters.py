"""Account models -> protobuf messages (pure)."""

from __future__ import annotations

from services.auth.accounts.repository import AccountRecord
from services.auth.models import AccountState, Role, User
from zap.auth.v1 import auth_pb2
from zapcore.timestamps import to_timestamp

ROLE_TO_PROTO = {
    Role.USER: auth_pb2.ROLE_USER,
    Role.MODERATOR: auth_pb2.ROLE_MODERATOR,
    Role.ADMIN: auth_pb2.ROLE_ADMIN,
}
STATE_TO_PROTO = {
    AccountState.ACTIVE: auth_pb2.ACCOUNT_STATE_ACTIVE,
    AccountState.DELETED: auth_pb2.ACCOUNT_STATE_DELETED,
}


def user_to_proto(user: User | AccountRecord) -> auth_pb2.User:
    return auth_pb2.User(
        id=str(user.id),
        username=user.username,
        display_name=user.display_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        created_at=to_timestamp(user.created_at),
    )


def account_to_proto(user: User | AccountRecord) -> auth_pb2.Account:
    return auth_pb2.Account(
        user=user_to_proto(user),
        email=user.email,
        role=ROLE_TO_PROTO[Role(user.role)],
        state=STATE_TO_PROTO[AccountState(user.state)],
    )
