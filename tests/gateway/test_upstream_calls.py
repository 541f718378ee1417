"""Calls from the gateway to a service, over a real socket: each carries the caller's
identity, the caller's own metadata and a deadline; errors arrive as the service sent them;
an upstream that keeps failing opens its circuit and is not called until it may close."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor

from gateway.breakers import Breakers
from zap.auth.v1 import auth_pb2
from zapcore.errors import NotFound
from zapcore.grpc_client import open_channel
from zapcore.grpc_server import GrpcServer
from zapcore.identity import Identity, IdentitySigner, current_identity, set_current_identity
from zapcore.rpc_errors import failure_from_rpc_error

SECRET = "g" * 64
READER = uuid.UUID("01900000-0000-7000-8000-000000000042")
AUTH: ServiceDescriptor = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


class Probe:
    """A service that tells what it saw, or fails the way it is told to."""

    def __init__(self) -> None:
        self.calls = 0

    async def who(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.calls += 1
        identity = current_identity()
        assert identity is not None
        extra = dict(context.invocation_metadata() or ()).get("x-probe", "")
        remaining = context.time_remaining()
        return (
            f"{identity.service}|{identity.user_id}|{identity.client_ip}|{extra}|"
            f"{remaining is not None and 0 < remaining <= 1.5}".encode()
        )

    async def down(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.calls += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "connection refused")
        raise AssertionError("abort raises")

    async def missing(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        self.calls += 1
        raise NotFound("no such account", reason="account-not-found")


@pytest.fixture
async def probe() -> AsyncIterator[tuple[Probe, GrpcServer]]:
    probe = Probe()
    server = GrpcServer(
        service_names=["test.Probe"],
        signer=IdentitySigner(SECRET),
        host="127.0.0.1",
        port=0,
        reflection_enabled=False,
    )
    server.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Probe",
                {
                    name: grpc.unary_unary_rpc_method_handler(behaviour)
                    for name, behaviour in (
                        ("Who", probe.who),
                        ("Down", probe.down),
                        ("Missing", probe.missing),
                    )
                },
            ),
        )
    )
    await server.start()
    yield probe, server
    await server.stop()


def _channel(server: GrpcServer, breakers: Breakers) -> grpc.aio.Channel:
    return open_channel(
        f"127.0.0.1:{server.port}",
        AUTH,
        signer=IdentitySigner(SECRET),
        caller="gateway",
        default_timeout=1.0,
        guard=breakers.guard("probe"),
    )


async def test_a_call_carries_the_caller_its_metadata_and_a_deadline(
    probe: tuple[Probe, GrpcServer],
) -> None:
    _, server = probe
    channel = _channel(server, Breakers(threshold=5, reset_seconds=60))
    try:
        who = channel.unary_unary("/test.Probe/Who")
        set_current_identity(Identity(service="gateway", user_id=READER, client_ip="203.0.113.9"))
        seen = await who(b"", metadata=(("x-probe", "kept"),))
        assert seen == f"gateway|{READER}|203.0.113.9|kept|True".encode()
        # No caller bound: the call still names the gateway as its caller.
        set_current_identity(None)
        assert (await who(b"")).startswith(b"gateway|None||")
    finally:
        await channel.close()


async def test_a_service_error_reaches_the_caller_as_sent_and_proves_the_upstream_alive(
    probe: tuple[Probe, GrpcServer],
) -> None:
    counted, server = probe
    channel = _channel(server, Breakers(threshold=2, reset_seconds=60))
    try:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary("/test.Probe/Missing")(b"")
            failure = failure_from_rpc_error(raised.value)
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "account-not-found",
            )
        assert counted.calls == 3  # never cut off: NOT_FOUND is an answer
    finally:
        await channel.close()


async def test_an_upstream_that_keeps_failing_is_cut_off_with_a_retry_after(
    probe: tuple[Probe, GrpcServer],
) -> None:
    counted, server = probe
    channel = _channel(server, Breakers(threshold=2, reset_seconds=60))
    try:
        down = channel.unary_unary("/test.Probe/Down")
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await down(b"")
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        reached = counted.calls
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/test.Probe/Who")(b"")
        failure = failure_from_rpc_error(refused.value)
        assert failure.code is grpc.StatusCode.UNAVAILABLE
        assert failure.reason == "upstream-circuit-open"
        assert failure.retry_after_seconds >= 1
        assert counted.calls == reached  # the open circuit answered; the service was not called
    finally:
        await channel.close()
