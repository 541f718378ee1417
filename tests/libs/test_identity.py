import time
import uuid

import pytest

from zapcore.errors import Unauthenticated
from zapcore.identity import Identity, IdentitySigner


def test_signed_identity_round_trips() -> None:
    signer = IdentitySigner("s" * 60)
    user = uuid.uuid4()
    identity = Identity(service="gateway", user_id=user, role="moderator", client_ip="10.0.0.1")
    verified = signer.verify(signer.sign(identity))
    assert (verified.service, verified.user_id, verified.role, verified.client_ip) == (
        "gateway",
        user,
        "moderator",
        "10.0.0.1",
    )
    assert verified.is_moderator


def test_assertion_from_another_secret_is_refused() -> None:
    token = IdentitySigner("a" * 60).sign(Identity(service="gateway"))
    with pytest.raises(Unauthenticated):
        IdentitySigner("b" * 60).verify(token)


def test_expired_assertion_is_refused() -> None:
    signer = IdentitySigner("s" * 60)
    token = signer.sign(Identity(service="gateway"), ttl_seconds=-10)
    with pytest.raises(Unauthenticated):
        signer.verify(token)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "e30.e30.", str(time.time())])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        IdentitySigner("s" * 60).verify(garbage)
