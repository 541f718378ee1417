"""The edge's access-token verifier: a token verified once is not verified again, yet an
expired token, a withdrawn key or a forged copy never passes because of that."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt

from zapcore import access_tokens
from zapcore.access_tokens import ACCESS_TYPE, ALGORITHM, AUDIENCE, ISSUER, AccessTokenVerifier
from zapcore.errors import Unauthenticated


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


class Signer:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "x": _b64(numbers.x),
            "y": _b64(numbers.y),
        }

    def token(self, *, lifetime: float = 900, **extra: Any) -> str:
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + lifetime,
            "typ": ACCESS_TYPE,
            "role": "user",
            **extra,
        }
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return jwt.encode(claims, pem.decode(), algorithm=ALGORITHM, headers={"kid": self.kid})


@pytest.fixture
def signer() -> Signer:
    return Signer("k1")


@pytest.fixture
def verifier(signer: Signer) -> AccessTokenVerifier:
    verifier = AccessTokenVerifier()
    verifier.load_jwks([signer.jwk])
    return verifier


def test_a_token_is_verified_once_then_remembered(
    verifier: AccessTokenVerifier, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = signer.token()
    first = verifier.verify(token)
    checks: list[str] = []
    monkeypatch.setattr(
        "zapcore.access_tokens.decode_verified", lambda *args, **kwargs: checks.append("x")
    )
    assert verifier.verify(token) == first
    assert verifier.knows(token)
    assert checks == []


def test_a_remembered_token_stops_at_its_expiry(
    verifier: AccessTokenVerifier, signer: Signer
) -> None:
    token = signer.token(lifetime=1)
    verifier.verify(token)
    time.sleep(2.1)
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_withdrawn_keys_stop_remembered_tokens(
    verifier: AccessTokenVerifier, signer: Signer
) -> None:
    token = signer.token()
    verifier.verify(token)
    verifier.load_jwks([Signer("k2").jwk])
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_a_forged_copy_is_not_taken_for_the_remembered_token(
    verifier: AccessTokenVerifier, signer: Signer
) -> None:
    token = signer.token()
    verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
    assert verifier.verify(token).user_id  # the real one still passes


def test_the_memory_is_bounded(signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = AccessTokenVerifier(remembered=2)
    verifier.load_jwks([signer.jwk])
    tokens = [signer.token() for _ in range(3)]
    for token in tokens:
        verifier.verify(token)
    real = access_tokens.decode_verified
    checked: list[str] = []

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checked.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(access_tokens, "decode_verified", counting)
    for token in reversed(tokens):
        verifier.verify(token)
    assert checked == [tokens[0]]  # the oldest was forgotten; the two newest were not
