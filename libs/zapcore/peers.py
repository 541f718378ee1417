"""Typed stubs for calling other services from a service or worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.protobuf.descriptor import FileDescriptor

from zapcore.grpc_client import open_channel
from zapcore.identity import IdentitySigner

if TYPE_CHECKING:
    from google.protobuf.descriptor import ServiceDescriptor


def service_descriptor(file: FileDescriptor) -> ServiceDescriptor:
    """The one service a zap.<name>.v1 file defines."""
    (service,) = file.services_by_name.values()
    return service


class Peers:
    """Channels to other services, opened lazily, closed together."""

    def __init__(self, signer: IdentitySigner, *, caller: str, timeout: float = 5.0) -> None:
        self._signer = signer
        self._caller = caller
        self._timeout = timeout
        self._channels: list[grpc.aio.Channel] = []

    def channel(self, target: str, file: FileDescriptor) -> grpc.aio.Channel:
        channel = open_channel(
            target,
            service_descriptor(file),
            signer=self._signer,
            caller=self._caller,
            default_timeout=self._timeout,
        )
        self._channels.append(channel)
        return channel

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
        self._channels.clear()
