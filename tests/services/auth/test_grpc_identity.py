"""auth's gRPC port reached directly, around the gateway: no call without a signed identity."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from tests.factories import PASSWORD, make_user
from tests.support.stack import TEST_SECRET
from zap.auth.v1 import auth_pb2, auth_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner

SIGNER = IdentitySigner(TEST_SECRET)


@pytest.fixture
async def auth(stack) -> AsyncIterator[auth_pb2_grpc.AuthServiceStub]:
    async with grpc.aio.insecure_channel(stack.auth_target) as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel)


def as_caller(assertion: str) -> tuple[tuple[str, str], ...]:
    return ((IDENTITY_METADATA_KEY, assertion),)


def user_identity(user_id: str) -> Identity:
    return Identity(service="gateway", user_id=uuid.UUID(user_id), client_ip="192.0.2.1")


def _with_subject(assertion: str, user_id: str) -> str:
    """A genuine assertion whose payload was rewritten to name someone else."""
    header, payload, signature = assertion.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = user_id
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def _alg_none(user_id: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": "gateway", "aud": "zap-internal", "sub": user_id, "iat": 0, "exp": 2**40}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# Each makes the x-zap-identity value for (victim's id, some other real user's token).
BAD_ASSERTIONS: dict[str, Callable[[str, str], str]] = {
    "signed with another secret": lambda victim, _: IdentitySigner("wrong-secret-" * 5).sign(
        user_identity(victim)
    ),
    "expired": lambda victim, _: SIGNER.sign(user_identity(victim), ttl_seconds=-5),
    "garbage": lambda victim, _: "not-an-assertion",
    "alg none": lambda victim, _: _alg_none(victim),
    "subject edited after signing": lambda victim, attacker: _with_subject(attacker, victim),
}


@pytest.mark.parametrize("make", BAD_ASSERTIONS.values(), ids=BAD_ASSERTIONS.keys())
async def test_a_bad_identity_is_unauthenticated(client, auth, make) -> None:
    victim = await make_user(client)
    attacker = await make_user(client)
    genuine = SIGNER.sign(user_identity(attacker.id))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await auth.GetAccount(
            auth_pb2.GetAccountRequest(), metadata=as_caller(make(victim.id, genuine)), timeout=5
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert victim.email not in (refused.value.details() or "")


async def test_a_call_without_identity_is_unauthenticated(client, auth) -> None:
    user = await make_user(client)
    calls = [
        auth.GetAccount(auth_pb2.GetAccountRequest(), timeout=5),
        auth.GetUser(auth_pb2.GetUserRequest(user_id=user.id), timeout=5),
        # Straight to the port, a guesser would skip the gateway's rate limits.
        auth.Login(auth_pb2.LoginRequest(email=user.email, password=PASSWORD), timeout=5),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_users_access_token_is_not_an_internal_identity(client, auth) -> None:
    user = await make_user(client)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await auth.GetAccount(
            auth_pb2.GetAccountRequest(), metadata=as_caller(user.access), timeout=5
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_service_identity_without_a_user_cannot_read_an_account(auth) -> None:
    metadata = as_caller(SIGNER.sign(Identity(service="feed")))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await auth.GetAccount(auth_pb2.GetAccountRequest(), metadata=metadata, timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_valid_identity_reads_its_own_account(client, auth) -> None:
    user = await make_user(client)
    answer = await auth.GetAccount(
        auth_pb2.GetAccountRequest(),
        metadata=as_caller(SIGNER.sign(user_identity(user.id))),
        timeout=5,
    )
    assert (answer.account.user.id, answer.account.email) == (user.id, user.email)
    assert answer.account.role == auth_pb2.ROLE_USER
