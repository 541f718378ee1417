"""Access tokens as the edge sees them: ES256 JWTs verified with public keys only.

auth signs; the gateway verifies locally with the JWKS it fetched from auth, so no
request costs a call to auth. The algorithm is pinned (no `none`, no HS256 made with a
public key), and `exp`, `iat`, `sub`, `iss`, `aud`, `jti` and `typ` are required, so a
refresh token can never pass as an access token.

A verified token is remembered (bounded, least recently used first out) until its `exp`, so
a client's next requests skip the ES256 check, the costliest step of an authenticated
request at the edge. Revocation is not the verifier's business: the deny-list is checked on
every request whatever the cache says. Replacing the keys forgets every remembered token, so
a withdrawn key stops its tokens at once.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt
from jose.exceptions import JOSEError

from zapcore.errors import Unauthenticated

ALGORITHM = "ES256"
ISSUER = "zap-auth"
AUDIENCE = "zap-api"
ACCESS_TYPE = "access"
REFRESH_TYPE = "refresh"
_REQUIRED = ("exp", "iat", "sub", "iss", "aud", "jti")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    token_id: str
    issued_at: int
    expires_at: int
    # The refresh-token family (login) that issued it; "" for a token without one.
    family_id: str = ""


def _b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def public_key_from_jwk(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    """An EC P-256 public key from its JWK form."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("only EC P-256 keys are supported")
    numbers = ec.EllipticCurvePublicNumbers(
        _b64url_int(jwk["x"]), _b64url_int(jwk["y"]), ec.SECP256R1()
    )
    return numbers.public_key()


def decode_verified(
    token: str, keys: dict[str, Any], expected_type: str, *, issuer: str = ISSUER
) -> dict[str, Any]:
    """Claims of a token signed by one of `keys` (by kid) and of the expected type."""
    try:
        header = jwt.get_unverified_header(token)
        key = keys.get(str(header.get("kid", "")))
        if key is None or header.get("alg") != ALGORITHM:
            raise Unauthenticated("token was not signed by a known key", reason="invalid-token")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            options={f"require_{name}": True for name in _REQUIRED},
        )
    except Unauthenticated:
        raise
    except (JOSEError, ValueError, TypeError, AttributeError, KeyError):
        # python-jose raises JWKError (not only JWTError) for some forged tokens.
        raise Unauthenticated("token is invalid or expired", reason="invalid-token") from None
    if claims.get("typ") != expected_type:
        raise Unauthenticated(f"not an {expected_type} token", reason="invalid-token")
    return claims


class AccessTokenVerifier:
    """Verifies access tokens against a set of public keys that can be replaced at run time."""

    def __init__(self, *, remembered: int = 50_000) -> None:
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._remembered = remembered
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def load_jwks(self, jwks: list[dict[str, str]]) -> None:
        """Replace the known keys with this JWKS (keys parsed once, here)."""
        self._keys = {jwk["kid"]: public_key_from_jwk(jwk) for jwk in jwks}
        self._verified.clear()

    def knows(self, token: str) -> bool:
        """True when the token names a key id we have (False prompts a JWKS refresh)."""
        if token in self._verified:
            return True
        try:
            return str(jwt.get_unverified_header(token).get("kid", "")) in self._keys
        except JOSEError:
            return True  # malformed: refreshing keys would not help

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid, unexpired access token (signature checked once per token)."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        verified = self._verify(token)
        if verified.expires_at <= time.time():
            # python-jose compares `exp` with whole seconds: a token passes it for up to a
            # second after its expiry, which the remembered copy must not prolong.
            raise Unauthenticated("token is invalid or expired", reason="invalid-token")
        self._verified[token] = verified
        if len(self._verified) > self._remembered:
            self._verified.popitem(last=False)
        return verified

    def _verify(self, token: str) -> AccessClaims:
        claims = decode_verified(token, self._keys, ACCESS_TYPE)
        try:
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                role=str(claims.get("role", "user")),
                token_id=str(claims["jti"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                family_id=str(claims.get("fam", "")),
            )
        except (ValueError, TypeError):
            raise Unauthenticated("token is invalid", reason="invalid-token") from None
