"""The JWKS the gateway verifies access tokens with, fetched from auth and kept fresh."""

from __future__ import annotations

import asyncio
import time

import grpc
from google.protobuf.json_format import MessageToDict

from gateway.upstreams import AuthClient
from zap.auth.v1 import auth_pb2
from zapcore.access_tokens import AccessTokenVerifier
from zapcore.logging import get_logger

log = get_logger(__name__)


class SigningKeys:
    """Loads auth's public keys; re-reads them periodically and when a token names a new kid."""

    def __init__(
        self,
        auth: AuthClient,
        verifier: AccessTokenVerifier,
        *,
        refresh_seconds: float,
        min_refresh_seconds: float,
    ) -> None:
        self._auth = auth
        self.verifier = verifier
        self._refresh_seconds = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._last_attempt = 0.0
        self._lock = asyncio.Lock()
        self.jwks: list[dict[str, str]] = []

    async def refresh(self) -> bool:
        """Fetch the JWKS now unless one was fetched moments ago; False if auth is unreachable."""
        async with self._lock:
            if time.monotonic() - self._last_attempt < self._min_refresh and self.jwks:
                return True
            self._last_attempt = time.monotonic()
            try:
                answer = await self._auth.GetSigningKeys(
                    auth_pb2.GetSigningKeysRequest(), timeout=2
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("jwks.refresh_failed", code=exc.code().name)
                return False
            self.jwks = [
                MessageToDict(key, preserving_proto_field_name=True) for key in answer.keys
            ]
            self.verifier.load_jwks(self.jwks)
            return True

    async def keep_fresh(self) -> None:
        """Background loop: re-read the keys every `refresh_seconds` (every second while failing)."""
        while True:
            ok = await self.refresh()
            # Until the first JWKS arrives no token can be verified: retry every second.
            await asyncio.sleep(self._refresh_seconds if ok else 1.0)
