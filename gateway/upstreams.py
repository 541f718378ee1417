"""gRPC channels to the services, opened in the app's lifespan and kept on app.state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zap.auth.v1 import auth_pb2

if TYPE_CHECKING:
    # mypy-protobuf types grpc.aio stubs as *AsyncStub, a name that exists only for type checkers.
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient
else:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceStub as AuthClient
from zapcore.grpc_client import open_channel
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

__all__ = ["AuthClient", "Upstreams"]


@dataclass
class Upstreams:
    auth: AuthClient
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    @classmethod
    def open(cls, platform: PlatformSettings, signer: IdentitySigner, timeout: float) -> Upstreams:
        auth_channel = open_channel(
            platform.auth_target,
            auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
            signer=signer,
            caller="gateway",
            default_timeout=timeout,
        )
        return cls(auth=AuthClient(auth_channel), channels={"auth": auth_channel})

    async def health(self, per_check_seconds: float = 1.0) -> dict[str, bool]:
        """Each upstream's gRPC health, checked concurrently."""

        async def check(channel: grpc.aio.Channel) -> bool:
            try:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=per_check_seconds
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

        names = list(self.channels)
        answers = await asyncio.gather(*(check(self.channels[name]) for name in names))
        return dict(zip(names, answers, strict=True))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
