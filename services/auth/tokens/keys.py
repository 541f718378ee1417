"""The signing key ring: EC P-256 keys loaded once from PEM files, addressed by key id."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from zapcore.access_tokens import ALGORITHM


def _b64url(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def new_key_id() -> str:
    """Key ids sort by creation time, so the newest key is the last one by name."""
    return f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def write_new_key(directory: Path) -> str:
    """Create a new signing key file (mode 0600) and return its key id."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = new_key_id()
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"{kid}.pem"
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return kid


class KeyRing:
    """Private keys by kid. The newest signs; all verify and are published until removed."""

    def __init__(self, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
        if not keys:
            raise ValueError("no signing keys")
        self._keys = keys
        self.active_kid = max(keys)

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        keys = {}
        for path in sorted(directory.glob("*.pem")):
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError(f"{path} is not an EC P-256 private key")
            keys[path.stem] = key
        return cls(keys)

    @property
    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        return self._keys[self.active_kid]

    def public_keys(self) -> dict[str, ec.EllipticCurvePublicKey]:
        return {kid: key.public_key() for kid, key in self._keys.items()}

    def jwks(self) -> list[dict[str, str]]:
        """Public JWKs of every key, the active one first."""
        result = []
        for kid in sorted(self._keys, reverse=True):
            numbers = self._keys[kid].public_key().public_numbers()
            result.append(
                {
                    "kid": kid,
                    "kty": "EC",
                    "crv": "P-256",
                    "x": _b64url(numbers.x),
                    "y": _b64url(numbers.y),
                    "alg": ALGORITHM,
                    "use": "sig",
                }
            )
        return result
