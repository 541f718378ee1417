"""AuthService over gRPC: decode the request, run one unit of work, encode the answer."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError

from services.auth.accounts.converters import account_to_proto, user_to_proto
from services.auth.accounts.repository import AccountReads, UserRepository
from services.auth.accounts.service import AccountService, ProfileChanges, Registration
from services.auth.deletion.cascade import announce
from services.auth.deletion.repository import DeletionRepository
from services.auth.resources import AuthResources
from services.auth.tokens.converters import tokens_to_proto
from services.auth.tokens.service import TokenService
from zap.auth.v1 import auth_pb2, auth_pb2_grpc
from zapcore.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from zapcore.identity import current_identity, require_user, require_user_id
from zapcore.ids import parse_id, parse_ids
from zapcore.logging import get_logger
from zapcore.timestamps import to_timestamp
from zapcore.user_cards import Cards

log = get_logger(__name__)

# GetUsers answers at most this many ids a call.
MAX_USERS = 100

Context = Any  # grpc.aio.ServicerContext; the interceptor has already bound identity and trace


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, resources: AuthResources) -> None:
        self._r = resources

    def _tokens(self, session: Any) -> TokenService:
        return TokenService(
            session,
            self._r.keys,
            self._r.deny_list,
            access_ttl=self._r.access_ttl,
            refresh_ttl=self._r.refresh_ttl,
        )

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        form = Registration(
            email=request.email,
            username=request.username,
            password=request.password,
            password_confirm=request.password_confirm,
            display_name=request.display_name,
        )
        async with self._r.db.unit_of_work() as session:
            user = await AccountService(session, self._r.hasher).register(form)
        return auth_pb2.RegisterResponse(account=account_to_proto(user))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: Context
    ) -> auth_pb2.LoginResponse:
        async with self._r.db.unit_of_work() as session:
            user = await AccountService(session, self._r.hasher).authenticate(
                request.email, request.password, _client_ip(), self._r.throttle
            )
            tokens = await self._tokens(session).issue(user)
        return auth_pb2.LoginResponse(
            tokens=tokens_to_proto(tokens), account=account_to_proto(user)
        )

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: Context
    ) -> auth_pb2.RefreshResponse:
        # The revocation that follows a reuse must be committed, so the error is raised
        # only after the unit of work has ended.
        async with self._r.db.unit_of_work() as session:
            rotation = await self._tokens(session).rotate(request.refresh)
        if rotation.reused:
            raise Unauthenticated(
                "refresh token was already used; every session of this login is revoked",
                reason="refresh-token-reused",
            )
        if rotation.tokens is None:
            raise Unauthenticated("refresh token is invalid or expired", reason="invalid-token")
        return auth_pb2.RefreshResponse(tokens=tokens_to_proto(rotation.tokens))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Context
    ) -> auth_pb2.LogoutResponse:
        identity = require_user()
        assert identity.user_id is not None
        expires = request.access_expires_at.seconds if request.HasField("access_expires_at") else 0
        async with self._r.db.unit_of_work() as session:
            await self._tokens(session).logout(
                identity.user_id,
                refresh_token=request.refresh,
                access_token_id=request.access_jti or identity.token_id,
                access_expires_at=expires or identity.expires_at,
            )
        return auth_pb2.LogoutResponse()

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: Context
    ) -> auth_pb2.GetUserResponse:
        user_id = parse_id(request.user_id, "user_id")
        async with self._r.db.read_only() as session:
            user = await AccountService(session, self._r.hasher).get_active(user_id)
        return auth_pb2.GetUserResponse(user=user_to_proto(user))

    async def GetUsers(
        self, request: auth_pb2.GetUsersRequest, context: Context
    ) -> auth_pb2.GetUsersResponse:
        user_ids = parse_ids(list(request.user_ids), "user_ids")
        if len(user_ids) > MAX_USERS:
            raise InvalidArgument(
                f"at most {MAX_USERS} ids per call", fields={"user_ids": f"at most {MAX_USERS}"}
            )
        wanted = [str(u) for u in dict.fromkeys(user_ids)]
        cards = await self._cards(wanted)
        if cards.missing:
            cards.found.update(await self._fill_cards(cards.missing))
        return auth_pb2.GetUsersResponse(users=[cards.found[u] for u in wanted if u in cards.found])

    async def _cards(self, user_ids: list[str]) -> Cards:
        try:
            return await self._r.cards.get(user_ids)
        except RedisError:
            return Cards(missing=user_ids)

    async def _fill_cards(self, user_ids: list[str]) -> dict[str, auth_pb2.User]:
        """From the database; remembered unless a change raced the read."""
        try:
            generations: list[bytes] | None = await self._r.cards.generations(user_ids)
        except RedisError:
            generations = None
        async with self._r.db.read_only() as session:
            users = await AccountService(session, self._r.hasher).get_many(
                [uuid.UUID(u) for u in user_ids]
            )
        found = {str(user.id): user_to_proto(user) for user in users}
        if generations is not None:
            with contextlib.suppress(RedisError):
                await self._r.cards.fill(user_ids, generations, found)
        return found

    async def GetUserByUsername(
        self, request: auth_pb2.GetUserByUsernameRequest, context: Context
    ) -> auth_pb2.GetUserByUsernameResponse:
        async with self._r.db.read_only() as session:
            user = await AccountService(session, self._r.hasher).by_username(request.username)
        return auth_pb2.GetUserByUsernameResponse(user=user_to_proto(user))

    async def GetUsersByUsernames(
        self, request: auth_pb2.GetUsersByUsernamesRequest, context: Context
    ) -> auth_pb2.GetUsersByUsernamesResponse:
        async with self._r.db.read_only() as session:
            users = await AccountService(session, self._r.hasher).by_usernames(
                list(request.usernames)
            )
        return auth_pb2.GetUsersByUsernamesResponse(users=[user_to_proto(u) for u in users])

    async def GetAccount(
        self, request: auth_pb2.GetAccountRequest, context: Context
    ) -> auth_pb2.GetAccountResponse:
        user_id = require_user_id()
        async with self._r.db.driver_reads() as connection:
            account = await AccountReads(connection).active(user_id)
        if account is None:
            raise NotFound("no such user", reason="user-not-found")
        return auth_pb2.GetAccountResponse(account=account_to_proto(account))

    async def UpdateProfile(
        self, request: auth_pb2.UpdateProfileRequest, context: Context
    ) -> auth_pb2.UpdateProfileResponse:
        user_id = require_user_id()
        changes = ProfileChanges(
            display_name=request.display_name if request.HasField("display_name") else None,
            bio=request.bio if request.HasField("bio") else None,
            avatar_url=request.avatar_url if request.HasField("avatar_url") else None,
            username=request.username if request.HasField("username") else None,
        )
        async with self._r.db.unit_of_work() as session:
            user = await AccountService(session, self._r.hasher).update_profile(user_id, changes)
        try:
            # Before answering: every reader shows the new profile on its next read.
            await self._r.cards.invalidate([str(user_id)])
        except RedisError as error:
            raise Unavailable(
                "the profile is saved but not yet shown everywhere; try again",
                reason="cache-unavailable",
            ) from error
        return auth_pb2.UpdateProfileResponse(account=account_to_proto(user))

    async def RequestDeletion(
        self, request: auth_pb2.RequestDeletionRequest, context: Context
    ) -> auth_pb2.RequestDeletionResponse:
        user_id = require_user_id()
        if not request.password:
            raise InvalidArgument("password is required", fields={"password": "is required"})
        async with self._r.db.unit_of_work() as session:
            account = await UserRepository(session).get(user_id)
            email = account.email if account is not None else ""
            deleted_at = await AccountService(session, self._r.hasher).soft_delete(
                user_id, request.password, _client_ip(), self._r.throttle
            )
            await self._tokens(session).forget(user_id)
        await self._r.throttle.forget(email)
        try:
            await announce(self._r.db, self._r.redis)
        except RedisError as error:  # the worker announces it on its next run
            log.warning("auth.deletion_not_announced", error=str(error))
        hard_delete_after = deleted_at + timedelta(days=self._r.settings.deletion_grace_days)
        return auth_pb2.RequestDeletionResponse(
            deleted_at=to_timestamp(deleted_at), hard_delete_after=to_timestamp(hard_delete_after)
        )

    async def GetDeletionStatus(
        self, request: auth_pb2.GetDeletionStatusRequest, context: Context
    ) -> auth_pb2.GetDeletionStatusResponse:
        # Operators only: the user themself can no longer sign in once deleted.
        if require_user().role != "admin":
            raise PermissionDenied("this call needs the admin role")
        user_id = parse_id(request.user_id, "user_id")
        async with self._r.db.read_only() as session:
            deleted_at = await AccountService(session, self._r.hasher).deleted_at(user_id)
            receipts = await DeletionRepository(session).receipts(user_id)
        return auth_pb2.GetDeletionStatusResponse(
            deleted_at=to_timestamp(deleted_at),
            receipts=[
                auth_pb2.DeletionReceipt(
                    service=r.service, completed_at=to_timestamp(r.completed_at)
                )
                for r in receipts
            ],
        )

    async def ExportUserData(
        self, request: auth_pb2.ExportUserDataRequest, context: Context
    ) -> auth_pb2.ExportUserDataResponse:
        user_id = require_user_id()
        async with self._r.db.read_only() as session:
            user = await AccountService(session, self._r.hasher).get_active(user_id)
            sessions = await self._tokens(session).sessions(user_id)
        return auth_pb2.ExportUserDataResponse(
            account=account_to_proto(user),
            sessions=[
                auth_pb2.Session(
                    family_id=str(s.family_id),
                    created_at=to_timestamp(s.created_at),
                    last_used_at=to_timestamp(s.last_used_at),
                )
                for s in sessions
            ],
        )

    async def GetSigningKeys(
        self, request: auth_pb2.GetSigningKeysRequest, context: Context
    ) -> auth_pb2.GetSigningKeysResponse:
        return auth_pb2.GetSigningKeysResponse(
            keys=[auth_pb2.Jwk(**jwk) for jwk in self._r.keys.jwks()]
        )


def _client_ip() -> str:
    """The address the gateway saw the request come from."""
    identity = current_identity()
    return identity.client_ip if identity is not None else ""
