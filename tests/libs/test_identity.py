import time
import uuid

import pytest

from zapcore.errors import Unauthenticated
from zapcore.identity import ASSERTION_TTL_SECONDS, Identity, IdentitySigner


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


def test_an_identity_s_assertion_is_reused_while_half_its_life_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = IdentitySigner("s" * 32)
    who = Identity(service="gateway", user_id=uuid.uuid4(), role="user", token_id="t1")
    now = time.time()
    first = signer.sign(who)
    assert signer.sign(who) == first
    assert signer.sign(Identity(service="gateway", user_id=who.user_id, token_id="t2")) != first

    monkeypatch.setattr(time, "time", lambda: now + ASSERTION_TTL_SECONDS // 2 + 1)
    renewed = signer.sign(who)
    assert renewed != first
    assert signer.verify(renewed) == who


def test_a_remembered_assertion_still_expires_and_a_forged_one_is_still_refused() -> None:
    signer = IdentitySigner("s" * 32)
    who = Identity(service="gateway", user_id=uuid.uuid4())
    assertion = signer.sign(who, ttl_seconds=1)
    assert signer.verify(assertion) == who
    assert signer.verify(assertion) == who  # remembered

    with pytest.raises(Unauthenticated):
        signer.verify(assertion[:-2] + ("AA" if assertion[-2:] != "AA" else "BB"))
    with pytest.raises(Unauthenticated):
        IdentitySigner("another secret entirely....").verify(assertion)
    time.sleep(2.1)
    with pytest.raises(Unauthenticated):
        signer.verify(assertion)
